long sum_of_squares(const long *values, int n);
static inline long square(long x) { return x * x; }
