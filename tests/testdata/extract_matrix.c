/* Small fixed-size matrix routines: inlinable accessors used by several callers (extraction tests). */
#include <assert.h>

#define N 4

typedef struct {
  double m[N][N];
} mat4;

static double get(const mat4 *a, int i, int j) {
  assert(i >= 0 && i < N && j >= 0 && j < N);
  return a->m[i][j];
}

static void set(mat4 *a, int i, int j, double v) { a->m[i][j] = v; }

void mat4_identity(mat4 *out) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) set(out, i, j, i == j ? 1.0 : 0.0);
}

void mat4_mul(const mat4 *a, const mat4 *b, mat4 *out) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < N; k++) s += get(a, i, k) * get(b, k, j);
      set(out, i, j, s);
    }
}

double mat4_trace(const mat4 *a) {
  double t = 0;
  for (int i = 0; i < N; i++) t += get(a, i, i);
  return t;
}

void mat4_transpose(const mat4 *a, mat4 *out) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) set(out, j, i, get(a, i, j));
}
