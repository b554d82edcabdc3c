// A small real C++ file with templates and inlinable member calls, used by the environment tests.
#include <cstddef>

template <typename T> struct Vec {
  T *data;
  std::size_t n;
  T &at(std::size_t i) { return data[i]; }
  std::size_t size() const { return n; }
};

template <typename T, typename F> T fold(Vec<T> &v, T init, F f) {
  for (std::size_t i = 0; i < v.size(); ++i) init = f(init, v.at(i));
  return init;
}

static long add(long a, long b) { return a + b; }
static long mul(long a, long b) { return a * b; }

long sum(Vec<long> &v) { return fold(v, 0L, add); }
long product(Vec<long> &v) { return fold(v, 1L, mul); }
long mixed(Vec<long> &v) { return sum(v) - product(v) + fold(v, 0L, [](long a, long b) { return a > b ? a : b; }); }
