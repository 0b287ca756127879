#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#else
#define CRC32C_HAVE_X86 0
#endif

/* The Castagnoli polynomial 0x1EDC6F41, bit-reversed (we process LSB first). */
#define CRC32C_POLY_REFLECTED 0x82F63B78u

/* table[k][b]: the crc of byte b followed by k zero bytes, so eight table
 * look-ups advance the crc by eight bytes at once (slicing-by-8). */
static uint32_t crc32c_table[8][256];
static bool crc32c_use_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c__init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc32c_table[k][i] = (crc32c_table[k - 1][i] >> 8) ^
                                 crc32c_table[0][crc32c_table[k - 1][i] & 0xff];
#if CRC32C_HAVE_X86
    __builtin_cpu_init();
    crc32c_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc32c_once, crc32c__init);
    const unsigned char *p = data;
    const uint32_t (*t)[256] = crc32c_table;
    crc = ~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    /* Byte loads rather than a u64 load keep this endian-neutral; compilers
     * fuse them into one load on little-endian machines. */
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
              t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
              t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    return ~crc;
}

#if CRC32C_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t crc32c__hw(uint32_t crc, const void *data,
                                                             size_t len)
{
    const unsigned char *p = data;
    uint64_t c = (uint32_t)~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}
#endif

bool crc32c_hw_available(void)
{
    pthread_once(&crc32c_once, crc32c__init);
    return crc32c_use_hw;
}

uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
#if CRC32C_HAVE_X86
    if (crc32c_hw_available())
        return crc32c__hw(crc, data, len);
#endif
    /* Without the instruction the "hardware" path is the table: callers
     * that ignore crc32c_hw_available() still get the right answer. */
    return crc32c_sw(crc, data, len);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc32c_once, crc32c__init);
#if CRC32C_HAVE_X86
    if (crc32c_use_hw)
        return crc32c__hw(crc, data, len);
#endif
    return crc32c_sw(crc, data, len);
}
