#pragma once
#include <vector>
#include <algorithm>
namespace cub {
template <typename T> struct DoubleBuffer {
  T *b[2]; int sel = 0;
  DoubleBuffer(T *a, T *c) { b[0] = a; b[1] = c; }
  T *Current() { return b[sel]; }
};
struct DeviceRadixSort {
  template <typename K, typename V, typename N>
  static int SortPairs(void *tmp, size_t &bytes, DoubleBuffer<K> &k, DoubleBuffer<V> &v, N n, int bb, int eb, void *) {
    if (!tmp) { bytes = 8; return 0; }
    K mask = eb >= 64 ? ~(K)0 : (((K)1 << eb) - 1);
    std::vector<size_t> idx(n);
    for (size_t i = 0; i < (size_t)n; i++) idx[i] = i;
    K *kc = k.Current(); V *vc = v.Current();
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ((kc[a] & mask) >> bb) < ((kc[b] & mask) >> bb); });
    K *ko = k.b[1 - k.sel]; V *vo = v.b[1 - v.sel];
    for (size_t i = 0; i < (size_t)n; i++) { ko[i] = kc[idx[i]]; vo[i] = vc[idx[i]]; }
    k.sel ^= 1; v.sel ^= 1;
    return 0;
  }
};
}
