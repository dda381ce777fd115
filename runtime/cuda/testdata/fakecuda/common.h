// common.h: what the fake libraries share.
#include <cstdio>
#include <cstdlib>
#include <cstring>

// fake_check aborts with a message when a caller breaks the API's rules,
// so that the test binary fails loudly.
#define fake_check(cond, ...)                                      \
	do {                                                           \
		if (!(cond)) {                                             \
			std::fprintf(stderr, "fakecuda: " __VA_ARGS__);        \
			std::fprintf(stderr, "\n");                            \
			std::abort();                                          \
		}                                                          \
	} while (0)
