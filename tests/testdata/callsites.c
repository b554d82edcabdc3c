/* A small real C file with several inlinable call sites, used by the environment tests. */
#include <stddef.h>
#include <string.h>

struct buf {
  unsigned char *data;
  size_t len, cap;
};

static int grow(struct buf *b, size_t need) {
  if (b->cap >= need) return 1;
  size_t cap = b->cap ? b->cap : 16;
  while (cap < need) cap *= 2;
  b->cap = cap;
  return 0;
}

static void put(struct buf *b, unsigned char c) {
  if (grow(b, b->len + 1)) b->data[b->len++] = c;
}

static unsigned checksum(const unsigned char *p, size_t n) {
  unsigned a = 1, s = 0;
  for (size_t i = 0; i < n; i++) {
    a = (a + p[i]) % 65521;
    s = (s + a) % 65521;
  }
  return (s << 16) | a;
}

static size_t rle(const unsigned char *in, size_t n, struct buf *out) {
  size_t i = 0;
  while (i < n) {
    size_t run = 1;
    while (i + run < n && in[i + run] == in[i] && run < 255) run++;
    put(out, (unsigned char)run);
    put(out, in[i]);
    i += run;
  }
  return out->len;
}

unsigned encode(const char *text, struct buf *out) {
  size_t n = strlen(text);
  rle((const unsigned char *)text, n, out);
  return checksum(out->data, out->len) ^ checksum((const unsigned char *)text, n);
}

unsigned encode_twice(const char *a, const char *b, struct buf *out) {
  return encode(a, out) + encode(b, out);
}
