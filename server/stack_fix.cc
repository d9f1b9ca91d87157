// platform.md P3: civetweb (prometheus-cpp's exposer) creates threads with a 100 KiB stack, less
// than the static TLS that LibTorch + OpenBLAS + glog load (~108 KiB), so pthread_create fails with
// EINVAL and the exposer cannot start. This interposes pthread_attr_setstacksize with a 1 MiB
// floor. It must be an object linked into each executable (a symbol in a static library is not
// pulled in).
#include <cstddef>

#include <dlfcn.h>
#include <pthread.h>

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size) {
  using Fn = int (*)(pthread_attr_t*, size_t);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kMin = size_t{1} << 20;
  return real(attr, size < kMin ? kMin : size);
}
