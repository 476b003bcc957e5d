/*
 * codec.c -- the text an S3 server reads and writes, as pure functions:
 * percent-encoding by AWS's rules, query strings, hex and base64, the two
 * date formats (HTTP's IMF-fixdate, ISO 8601), Range headers, XML escaping,
 * UTF-8 and the rules for bucket names and keys.
 *
 * Every function here takes bytes from the wire and bounds itself by the
 * length it is given; none allocates except into a caller's arena or buffer.
 */
#include "s3d/s3d_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ============================================================== error table */

static const struct {
    const char *code;
    int status;
    const char *msg;
} errs[] = {
#define MK_S3E_ROW(e, code, status, msg) {code, status, msg},
    MK_S3_ERRORS(MK_S3E_ROW)
#undef MK_S3E_ROW
};

const char *mk_s3_err_code(int e) { return e > 0 && e < MK_S3E_COUNT ? errs[e].code : "InternalError"; }
int mk_s3_err_status(int e) { return e >= 0 && e < MK_S3E_COUNT ? errs[e].status : 500; }
const char *mk_s3_err_message(int e) { return e > 0 && e < MK_S3E_COUNT ? errs[e].msg : "Internal error"; }

/* ========================================================= percent-encoding */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t mk_s3_pct_decode(const char *s, size_t n, bool plus_space, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == 0)
            return -1;
        dst[o++] = c;
    }
    dst[o] = 0;
    return (ssize_t)o;
}

void mk_s3_uri_encode(mk_buf_t *out, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~' || (c == '/' && keep_slash)) {
            mk_buf_put(out, &c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            mk_buf_put(out, e, 3);
        }
    }
}

/* ================================================================== queries */

int mk_s3_query_parse(const char *raw, mk_arena_t *a, mk_s3_query_t *q)
{
    q->v = NULL;
    q->n = 0;
    if (!raw || !*raw)
        return 0;
    int count = 1;
    for (const char *p = raw; *p; p++)
        if (*p == '&')
            count++;
    if (count > MK_S3_MAX_PARAMS)
        return -1;
    q->v = mk_arena_alloc(a, sizeof(mk_s3_param_t) * (size_t)count);
    if (!q->v)
        return -1;
    const char *p = raw;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nl = eq ? (size_t)(eq - p) : len;
            size_t vl = eq ? len - nl - 1 : 0;
            char *name = mk_arena_alloc(a, nl + 1), *val = mk_arena_alloc(a, vl + 1);
            if (!name || !val || mk_s3_pct_decode(p, nl, true, name) < 0 ||
                (eq && mk_s3_pct_decode(eq + 1, vl, true, val) < 0))
                return -1;
            mk_s3_param_t *pr = &q->v[q->n++];
            pr->name = name;
            pr->value = val;
            pr->has_value = eq != NULL;
            pr->raw_name = p;
            pr->raw_name_len = nl;
            pr->raw_value = eq ? eq + 1 : p + len;
            pr->raw_value_len = vl;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return 0;
}

const mk_s3_param_t *mk_s3_query_find(const mk_s3_query_t *q, const char *name)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->v[i].name, name) == 0)
            return &q->v[i];
    return NULL;
}

const char *mk_s3_query_get(const mk_s3_query_t *q, const char *name)
{
    const mk_s3_param_t *p = mk_s3_query_find(q, name);
    return p ? p->value : NULL;
}

/* ============================================================ hex, base64 */

void mk_s3_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = 0;
}

int mk_s3_unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int h = hexval((unsigned char)s[2 * i]), l = h < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h * 16 + l);
    }
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t mk_s3_base64(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static int b64val(int c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

ssize_t mk_s3_unbase64(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else {
                if (pad)
                    return -1; /* data after padding */
                v[j] = b64val((unsigned char)s[i + j]);
                if (v[j] < 0)
                    return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = 3 - (size_t)pad;
        if (o + take > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (take > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (take > 2)
            out[o++] = (uint8_t)w;
    }
    return (ssize_t)o;
}

/* ==================================================================== dates */

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void mk_s3_http_date(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[96];
    snprintf(b, sizeof(b), "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
    size_t n = MK_MIN(strlen(b), (size_t)31);
    memcpy(out, b, n);
    out[n] = 0;
}

void mk_s3_iso_date(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[96];
    snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000 + 1000) % 1000);
    size_t n = MK_MIN(strlen(b), (size_t)31);
    memcpy(out, b, n);
    out[n] = 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone games). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool civil_ok(int y, int mo, int d, int h, int mi, int s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] && h >= 0 && h <= 23 &&
           mi >= 0 && mi <= 59 && s >= 0 && s <= 60;
}

static int64_t civil_ms(int y, int mo, int d, int h, int mi, int s)
{
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000;
}

static int month_of(const char *m)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i + 1;
    return 0;
}

/* Fixed-width digits. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int mk_s3_parse_amz_date(const char *s, int64_t *ms)
{
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    int y = digits(s, 4), mo = digits(s + 4, 2), d = digits(s + 6, 2);
    int h = digits(s + 9, 2), mi = digits(s + 11, 2), sec = digits(s + 13, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0 || !civil_ok(y, mo, d, h, mi, sec))
        return -1;
    *ms = civil_ms(y, mo, d, h, mi, sec);
    return 0;
}

int mk_s3_parse_http_date(const char *s, int64_t *ms)
{
    if (!s || strlen(s) > 64)
        return -1;
    char wd[16], mon[8], zone[8] = "";
    int d, y, h, mi, sec, n = 0;
    /* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", or a "+0000" zone (libs3) */
    if (sscanf(s, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d %7s%n", wd, &d, mon, &y, &h, &mi, &sec, zone, &n) == 8 &&
        !s[n]) {
        /* fall through */
    } else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %7s%n", wd, &d, mon, &y, &h, &mi, &sec, zone, &n) ==
                   8 &&
               !s[n]) {
        y += y < 70 ? 2000 : 1900; /* RFC 850 */
    } else if (sscanf(s, "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &h, &mi, &sec, &y, &n) == 7 && !s[n]) {
        strcpy(zone, "GMT"); /* asctime */
    } else {
        return -1;
    }
    int mo = month_of(mon);
    if (!mo || strlen(mon) != 3 || !civil_ok(y, mo, d, h, mi, sec))
        return -1;
    int64_t off = 0;
    if (strcmp(zone, "GMT") == 0 || strcmp(zone, "UTC") == 0 || strcmp(zone, "Z") == 0) {
        off = 0;
    } else if ((zone[0] == '+' || zone[0] == '-') && strlen(zone) == 5) {
        int hh = digits(zone + 1, 2), mm = digits(zone + 3, 2);
        if (hh < 0 || mm < 0 || hh > 23 || mm > 59)
            return -1;
        off = (int64_t)(hh * 60 + mm) * 60000 * (zone[0] == '+' ? 1 : -1);
    } else {
        return -1;
    }
    *ms = civil_ms(y, mo, d, h, mi, sec) - off;
    return 0;
}

/* =================================================================== ranges */

/* Reads a decimal number up to 19 digits; -1 if none or too long. */
static int64_t read_num(const char **pp)
{
    const char *p = *pp;
    int64_t v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > 18)
            return -1;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (!n)
        return -1;
    *pp = p;
    return v;
}

int mk_s3_range_parse(const char *v, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!v)
        return 1;
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "bytes=", 6) != 0)
        return 1;
    const char *p = v + 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return 1; /* several ranges: S3 answers the whole object */
    int64_t first = -1, last = -1;
    if (*p == '-') {
        p++;
        int64_t suffix = read_num(&p);
        while (*p == ' ')
            p++;
        if (suffix < 0 || *p)
            return 1;
        if (suffix == 0 || size == 0)
            return -1;
        uint64_t n = (uint64_t)suffix < size ? (uint64_t)suffix : size;
        *off = size - n;
        *len = n;
        return 0;
    }
    first = read_num(&p);
    if (first < 0 || *p != '-')
        return 1;
    p++;
    if (*p >= '0' && *p <= '9') {
        last = read_num(&p);
        if (last < 0)
            return 1;
    }
    while (*p == ' ')
        p++;
    if (*p)
        return 1;
    if (last >= 0 && last < first)
        return 1; /* syntactically invalid: ignored, as RFC 9110 says */
    if ((uint64_t)first >= size)
        return -1;
    uint64_t end = last < 0 || (uint64_t)last >= size ? size - 1 : (uint64_t)last;
    *off = (uint64_t)first;
    *len = end - (uint64_t)first + 1;
    return 0;
}

/* ===================================================================== XML */

void mk_s3_xml_escape(mk_buf_t *out, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        char num[8];
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        case '\r': /* kept as references so that a parser does not fold them */
        case '\n':
        case '\t':
            snprintf(num, sizeof(num), "&#%d;", s[i]);
            rep = num;
            break;
        default:
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                rep = "?"; /* not representable in XML 1.0 */
            break;
        }
        if (rep) {
            mk_buf_put(out, s + i - run, run);
            run = 0;
            mk_buf_put(out, rep, strlen(rep));
        } else {
            run++;
        }
    }
    mk_buf_put(out, s + n - run, run);
}

void mk_s3_xml_elem(mk_buf_t *out, const char *name, const char *text)
{
    size_t nl = strlen(name);
    mk_buf_put(out, "<", 1);
    mk_buf_put(out, name, nl);
    mk_buf_put(out, ">", 1);
    mk_s3_xml_escape(out, text, strlen(text));
    mk_buf_put(out, "</", 2);
    mk_buf_put(out, name, nl);
    mk_buf_put(out, ">", 1);
}

/* ==================================================================== CRC-32 */

uint32_t mk_s3_crc32(uint32_t crc, const void *data, size_t n)
{
    static uint32_t table[256];
    static _Atomic int ready;
    if (!atomic_load(&ready)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c; /* every thread computes the same values */
        }
        atomic_store(&ready, 1);
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ==================================================================== names */

bool mk_s3_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool mk_s3_bucket_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
        if (c == '.' && i + 1 < n && (s[i + 1] == '.' || s[i + 1] == '-'))
            return false;
        if (c == '-' && i + 1 < n && s[i + 1] == '.')
            return false;
    }
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    /* not an IPv4 address */
    int dots = 0;
    bool all_digits_dots = true;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (!isdigit((unsigned char)s[i]))
            all_digits_dots = false;
    }
    return !(all_digits_dots && dots == 3);
}

int mk_s3_key_check(const char *key, size_t n)
{
    if (n == 0)
        return MK_S3E_INVALID_ARGUMENT;
    if (n > MK_S3_MAX_KEY)
        return MK_S3E_KEY_TOO_LONG;
    if (!mk_s3_utf8_valid(key, n))
        return MK_S3E_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
            return MK_S3E_INVALID_ARGUMENT;
    /* no "." or ".." path segment: such keys mean traversal to the tools
     * that map keys to files, and to us they are only ever a mistake */
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || key[i] == '/') {
            size_t len = i - seg;
            if ((len == 1 && key[seg] == '.') || (len == 2 && key[seg] == '.' && key[seg + 1] == '.'))
                return MK_S3E_INVALID_ARGUMENT;
            seg = i + 1;
        }
    }
    return MK_S3E_NONE;
}
