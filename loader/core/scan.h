/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* scan_*: is text a valid value (and what)? The *_FORM strings say what is expected, for the
 * messages of whoever reads the text. */
#ifndef BPFREDIR_CORE_SCAN_H
#define BPFREDIR_CORE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "bpfredir.h"

#define PORT_FORM "1-65535"
#define PROTO_FORM "tcp or udp"
#define ADDR_FORM "an IPv4 or IPv6 address"

bool scan_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);
/* Why scan_uint refused text ("" when no hint fits), to append to a message. */
const char *number_hint(const char *text);
bool scan_port(const char *text, __u16 *port);
bool scan_proto(const char *text, __u8 *proto);
bool scan_addr(const char *text, __u8 addr[BPFREDIR_ADDR_LEN]);
const char *proto_name(__u8 proto);

struct in_addr;
void addr_map_v4(__u8 addr[BPFREDIR_ADDR_LEN], const struct in_addr *v4);
/* Is addr an IPv4 address in that form? A loopback one (127.0.0.0/8, ::1)? */
bool addr_is_v4(const __u8 addr[BPFREDIR_ADDR_LEN]);
bool addr_is_loopback(const __u8 addr[BPFREDIR_ADDR_LEN]);
/* ADDR:PORT, or [ADDR]:PORT for IPv6 (unbracketed, its port could not be told apart); *v6,
 * when not NULL, says which. */
bool scan_endpoint(const char *text, __u8 addr[BPFREDIR_ADDR_LEN], __u16 *port, bool *v6);
void format_addr(const __u8 addr[BPFREDIR_ADDR_LEN], char *buf, size_t size);
/* The printable form of word for a message: at most max bytes of it (tail: its last max
 * bytes, after "..."), bytes other than printable ASCII, '\\' and '\'' as \xNN, so that
 * nothing of a file reaches the terminal as a control sequence. buf holds 4 * max + 4 bytes.
 * True when its end was cut. */
bool quote_word(const char *word, size_t max, bool tail, char *buf);

#endif /* BPFREDIR_CORE_SCAN_H */
