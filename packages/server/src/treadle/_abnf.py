"""RFC 9112, RFC 9110 and RFC 3986 grammar: commented ABNF beside the regexes that enforce it.

Every regex here is meant for ``fullmatch`` on bytes. They encode only what the grammar allows;
the parser decides which status a mismatch earns.
"""

from __future__ import annotations

import re

# tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
#       / DIGIT / ALPHA                                                    ; RFC 9110 §5.6.2
# token = 1*tchar
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN = re.compile(rb"[" + _TCHAR + rb"]+")

# method = token                                                           ; RFC 9110 §9.1
METHOD = TOKEN

# HTTP-version = HTTP-name "/" DIGIT "." DIGIT ; HTTP-name = %s"HTTP"      ; RFC 9112 §2.3
HTTP_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")

# unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"                      ; RFC 3986 §2.3
# sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
# pct-encoded = "%" HEXDIG HEXDIG
# pchar       = unreserved / pct-encoded / sub-delims / ":" / "@"           ; RFC 3986 §3.3
_PCHAR = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
# absolute-path = 1*( "/" segment ) ; segment = *pchar                     ; RFC 9110 §4.1
_ABSOLUTE_PATH = rb"(?:/" + _PCHAR + rb"*)+"
# query = *( pchar / "/" / "?" )                                           ; RFC 3986 §3.4
_QUERY = rb"(?:" + _PCHAR + rb"|[/?])*"
# origin-form = absolute-path [ "?" query ]                                ; RFC 9112 §3.2.1
ORIGIN_FORM = re.compile(rb"(" + _ABSOLUTE_PATH + rb")(?:\?(" + _QUERY + rb"))?")

# IP-literal = "[" ( IPv6address / IPvFuture ) "]"  (checked loosely: hex, ":" and ".")
# reg-name   = *( unreserved / pct-encoded / sub-delims )                  ; RFC 3986 §3.2.2
# port       = *DIGIT
# uri-host [ ":" port ]                                                    ; RFC 9110 §7.2
_HOST = rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
HOST = re.compile(rb"(" + _HOST + rb")(?::([0-9]*))?")

# absolute-form = absolute-URI                                             ; RFC 9112 §3.2.2
# absolute-URI  = scheme ":" hier-part [ "?" query ]; for http(s): "//" authority path-abempty
# authority     = [ userinfo "@" ] host [ ":" port ]  (userinfo is refused: RFC 9110 §4.2.4)
# path-abempty  = *( "/" segment )
ABSOLUTE_FORM = re.compile(
    rb"([A-Za-z][A-Za-z0-9+\-.]*)://("
    + _HOST
    + rb"(?::[0-9]*)?)((?:/"
    + _PCHAR
    + rb"*)*)(?:\?("
    + _QUERY
    + rb"))?"
)

# field-line  = field-name ":" OWS field-value OWS                         ; RFC 9112 §5
# field-value = *field-content ; field-vchar = VCHAR / obs-text            ; RFC 9110 §5.5
# (values are matched as *( SP / HTAB / VCHAR / obs-text ) and then stripped of OWS; no CTL,
# so CR, LF and NUL are refused.)
_FIELD_LINE = rb"[" + _TCHAR + rb"]+:[\t \x21-\x7e\x80-\xff]*"
FIELD_LINE = re.compile(rb"([" + _TCHAR + rb"]+):([\t \x21-\x7e\x80-\xff]*)")
# field-section = *( field-line CRLF ): the whole block checked in one pass, so the parser can
# split it with plain byte methods afterwards.
FIELD_SECTION = re.compile(rb"(?:" + _FIELD_LINE + rb"\r\n)*")

# chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF               ; RFC 9112 §7.1
# chunk-size = 1*HEXDIG
# chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# chunk-ext-name = token ; chunk-ext-val = token / quoted-string
# quoted-string  = DQUOTE *( qdtext / quoted-pair ) DQUOTE                 ; RFC 9110 §5.6.4
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_BWS = rb"[ \t]*"
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:"
    + _BWS
    + rb";"
    + _BWS
    + rb"["
    + _TCHAR
    + rb"]+(?:"
    + _BWS
    + rb"="
    + _BWS
    + rb"(?:["
    + _TCHAR
    + rb"]+|"
    + _QUOTED_STRING
    + rb"))?)*)"
)
