#include "squares.h"

long sum_of_squares(const long *values, int n) {
  long total = 0;
  for (int i = 0; i < n; ++i) total += square(values[i]);
  return total;
}
