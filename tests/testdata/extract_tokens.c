/* A small tokenizer: several static helpers called from more than one place (extraction tests). */
#include <ctype.h>
#include <stddef.h>

enum kind { END, NUMBER, WORD, PUNCT };

struct token {
  enum kind kind;
  const char *start;
  size_t len;
};

static int is_word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static const char *skip_space(const char *p) {
  while (*p && isspace((unsigned char)*p)) p++;
  return p;
}

static const char *scan_while(const char *p, int (*pred)(char)) {
  while (*p && pred(*p)) p++;
  return p;
}

static int is_digit_char(char c) { return c >= '0' && c <= '9'; }

const char *next_token(const char *p, struct token *t) {
  p = skip_space(p);
  t->start = p;
  if (!*p) {
    t->kind = END;
    t->len = 0;
    return p;
  }
  const char *end;
  if (is_digit_char(*p)) {
    t->kind = NUMBER;
    end = scan_while(p, is_digit_char);
  } else if (is_word_char(*p)) {
    t->kind = WORD;
    end = scan_while(p, is_word_char);
  } else {
    t->kind = PUNCT;
    end = p + 1;
  }
  t->len = (size_t)(end - p);
  return end;
}

size_t count_kind(const char *text, enum kind kind) {
  struct token t;
  size_t n = 0;
  for (text = next_token(text, &t); t.kind != END; text = next_token(text, &t))
    n += t.kind == kind;
  return n;
}

long sum_numbers(const char *text) {
  struct token t;
  long sum = 0;
  for (text = next_token(text, &t); t.kind != END; text = next_token(text, &t)) {
    if (t.kind != NUMBER) continue;
    long v = 0;
    for (size_t i = 0; i < t.len; i++) v = v * 10 + (t.start[i] - '0');
    sum += v;
  }
  return sum;
}
