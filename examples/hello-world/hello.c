/*
 * hello.c - the payload of ocipack's example "hello-world" image.
 *
 * A freestanding, statically linked Linux program: no libc, no startup
 * files.  _start writes the message to stdout with the raw write(2)
 * system call and leaves with exit(2).  The message bytes live in
 * "message.h", which the Makefile generates from greeting.txt with the
 * {arch} placeholder replaced by the bashbrew architecture name.
 *
 * Supported: x86_64, i386, arm (EABI), aarch64, mips64 (n64 ABI),
 * powerpc64le, riscv64 and s390x.
 */

#include "message.h" /* static const char message[] = { ... }; */

/*
 * sys3(nr, a, b, c): issue system call nr with three arguments.
 * Returns the kernel's result, negative errno on failure.
 */
#if defined(__x86_64__)
#define SYS_write 1
#define SYS_exit 60
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

#elif defined(__i386__)
#define SYS_write 4
#define SYS_exit 1
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory");
	return ret;
}

#elif defined(__arm__)
#if !defined(__ARM_EABI__)
#error "only the ARM EABI system call convention is supported"
#endif
#define SYS_write 4
#define SYS_exit 1
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	register long r7 __asm__("r7") = nr;
	register long r0 __asm__("r0") = a;
	register long r1 __asm__("r1") = b;
	register long r2 __asm__("r2") = c;
	__asm__ volatile("svc #0"
			 : "+r"(r0)
			 : "r"(r7), "r"(r1), "r"(r2)
			 : "memory");
	return r0;
}

#elif defined(__aarch64__)
#define SYS_write 64
#define SYS_exit 93
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc #0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2)
			 : "memory");
	return x0;
}

#elif defined(__mips__) && defined(_ABI64) && _MIPS_SIM == _ABI64
/* n64: number in $v0, arguments in $a0..$a2; $a3 != 0 flags an error
 * and $v0 then holds the positive errno. */
#define SYS_write 5001
#define SYS_exit 5058
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	register long v0 __asm__("$2") = nr;
	register long a0 __asm__("$4") = a;
	register long a1 __asm__("$5") = b;
	register long a2 __asm__("$6") = c;
	register long a3 __asm__("$7");
	__asm__ volatile("syscall"
			 : "+r"(v0), "=r"(a3)
			 : "r"(a0), "r"(a1), "r"(a2)
			 : "$1", "$3", "$8", "$9", "$10", "$11", "$12",
			   "$13", "$14", "$15", "$24", "$25", "hi", "lo",
			   "memory");
	return a3 ? -v0 : v0;
}

#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
/* Number in r0, arguments in r3..r5; cr0.SO set flags an error and r3
 * then holds the positive errno. */
#define SYS_write 4
#define SYS_exit 1
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	register long r0 __asm__("r0") = nr;
	register long r3 __asm__("r3") = a;
	register long r4 __asm__("r4") = b;
	register long r5 __asm__("r5") = c;
	__asm__ volatile("sc\n\t"
			 "bns+ 1f\n\t"
			 "neg 3,3\n"
			 "1:"
			 : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5)
			 :
			 : "r6", "r7", "r8", "r9", "r10", "r11", "r12",
			   "cr0", "ctr", "xer", "memory");
	return r3;
}

#elif defined(__riscv) && __riscv_xlen == 64
#define SYS_write 64
#define SYS_exit 93
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	register long a7 __asm__("a7") = nr;
	register long a0 __asm__("a0") = a;
	register long a1 __asm__("a1") = b;
	register long a2 __asm__("a2") = c;
	__asm__ volatile("ecall"
			 : "+r"(a0)
			 : "r"(a7), "r"(a1), "r"(a2)
			 : "memory");
	return a0;
}

#elif defined(__s390x__)
/* Number in r1 ("svc 0" form), arguments in r2..r4, result in r2. */
#define SYS_write 4
#define SYS_exit 1
static inline __attribute__((always_inline)) long
sys3(long nr, long a, long b, long c)
{
	register long r1 __asm__("r1") = nr;
	register long r2 __asm__("r2") = a;
	register long r3 __asm__("r3") = b;
	register long r4 __asm__("r4") = c;
	__asm__ volatile("svc 0"
			 : "+r"(r2)
			 : "r"(r1), "r"(r3), "r"(r4)
			 : "memory");
	return r2;
}

#else
#error "unsupported architecture"
#endif

/* The kernel enters here; there is no caller to return to. */
__attribute__((noreturn, used)) void _start(void);

void _start(void)
{
	const char *p = message;
	unsigned long left = sizeof message;
	long status = 0;

	while (left > 0) {
		long n = sys3(SYS_write, 1, (long)p, (long)left);
		if (n <= 0) {
			status = 1;
			break;
		}
		p += n;
		left -= (unsigned long)n;
	}
	for (;;)
		sys3(SYS_exit, status, 0, 0);
}
