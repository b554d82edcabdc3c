#include <stdio.h>
#include <string.h>

#include "squares.h"

static long length_of(const char *s) { return (long)strlen(s); }

int main(int argc, char **argv) {
  long lengths[64];
  int n = 0;
  for (int i = 1; i < argc && n < 64; ++i) lengths[n++] = length_of(argv[i]);
  printf("%ld\n", sum_of_squares(lengths, n));
  return 0;
}
