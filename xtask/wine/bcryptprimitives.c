/* Test scaffolding for Wine 8 only, never shipped: Rust's standard library imports ProcessPrng
 * from bcryptprimitives.dll (Windows 10+), which Wine 8 lacks. This shim answers it with
 * advapi32's RtlGenRandom (SystemFunction036), which Wine has. Built by `cargo xtask cross`
 * with mingw and put beside the test's portscope.exe. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
