/*
 * tsvmm-random-read: 4 KiB random reads with O_DIRECT from a block device
 * (or file), one at a time, for a fixed time; prints the reads per second.
 * bench:virtio-blk runs it in the guest under tsvmm and under QEMU: the
 * guest image has no fio, and a shell loop of dd would measure process
 * start-up, not the disk.
 *
 *   build:  cc -static -O2 -Wall -Wextra -o tsvmm-random-read random-read.c
 *   run:    tsvmm-random-read /dev/vda SECONDS
 *   output: random-read-iops=N reads=N seconds=S
 *
 * The offsets come from a fixed-seed generator, so every run and every VMM
 * reads the same sequence of blocks.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* xorshift64: a fixed, portable sequence; quality does not matter here. */
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DEVICE SECONDS\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[2]);
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    uint64_t size = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = st.st_size;
    else if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
        perror("BLKGETSIZE64");
        return 1;
    }
    uint64_t blocks = size / BLOCK;
    void *buffer;
    if (blocks == 0 || seconds <= 0 || posix_memalign(&buffer, BLOCK, BLOCK) != 0) {
        fprintf(stderr, "%s: nothing to read (size %llu, %s s)\n", argv[0], (unsigned long long)size, argv[2]);
        return 1;
    }
    uint64_t state = 0x9e3779b97f4a7c15ull;
    uint64_t reads = 0;
    double start = now(), elapsed = 0;
    while (elapsed < seconds) {
        off_t offset = (off_t)(next_random(&state) % blocks) * BLOCK;
        if (pread(fd, buffer, BLOCK, offset) != BLOCK) {
            perror("pread");
            return 1;
        }
        reads++;
        /* The clock every 16 reads: cheap, and fine-grained enough. */
        if ((reads & 15) == 0) elapsed = now() - start;
    }
    elapsed = now() - start;
    printf("random-read-iops=%.0f reads=%llu seconds=%.2f\n", reads / elapsed, (unsigned long long)reads, elapsed);
    return 0;
}
