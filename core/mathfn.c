/* mathfn.c: erfinv accurate to about 1 ulp in double, shared by the elementwise erfinv and the
 * Gaussian quantile targets of the regularizers. */
#include "internal.h"
#include <math.h>

/* Giles, "Approximating the erfinv function" (GPU Gems 4), single-precision branch; w =
 * -log((1 - y)(1 + y)) from the exact complements */
static double erfinv_guess(double y, double w) {
  double p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  return p * y;
}

/* erfinv(y) given opy = 1 + y and omy = 1 - y computed exactly by the caller. Newton steps on
 * erf(x) - y, with the residual written through erfc in the tails so that it keeps its relative
 * accuracy there (erf(x) - y = erfc(-x) - (1 + y) = (1 - y) - erfc(x)). */
double vr_erfinv_exact(double y, double opy, double omy) {
  if (isnan(y) || y < -1 || y > 1) return NAN;
  if (opy == 0) return -INFINITY;
  if (omy == 0) return INFINITY;
  double x = erfinv_guess(y, -log(opy * omy));
  for (int it = 0; it < 2; it++) {
    double r;
    if (y < -0.5) r = erfc(-x) - opy;
    else if (y > 0.5) r = omy - erfc(x);
    else r = erf(x) - y;
    x -= r / (1.1283791670955126 * exp(-x * x));
  }
  return x;
}

double vr_erfinv_f64(double y) { return vr_erfinv_exact(y, 1.0 + y, 1.0 - y); }
