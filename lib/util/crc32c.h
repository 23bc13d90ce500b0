/* crc32c.h - CRC-32C (Castagnoli), the checksum of a queue file's commit
 * record (doc/queue-format.md, "Commit"): the SSE 4.2 instruction where
 * the processor has it, a table otherwise. */
#ifndef POSTERN_CRC32C_H
#define POSTERN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc (0 to start) over len bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
