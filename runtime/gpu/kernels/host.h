// host.h: the C interface of host.cpp.
#ifdef __cplusplus
extern "C" {
#endif
// host_launch runs kernel name over a grid of grid blocks of block threads,
// one thread after another. It returns 0, -1 for an unknown kernel, or
// one more than the kernel's parameter count when nargs does not match.
int host_launch(const char *name, const unsigned long long *args, int nargs, unsigned grid, unsigned block);
int host_kernel_count(void);
const char *host_kernel_name(int i);
#ifdef __cplusplus
}
#endif
