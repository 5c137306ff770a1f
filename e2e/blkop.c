/*
 * blkop: a discard or a write-zeroes on a block device, for the Linux guest
 * of the e2e disk tests (busybox's blkdiscard has no zero-out), built static
 * on the host (e2e/run.sh).
 *
 *   blkop discard|zeroout DEVICE OFFSET LENGTH      (bytes)
 *
 * BLKDISCARD sends the device DISCARD; BLKZEROOUT sends WRITE_ZEROES without
 * the unmap flag (the kernel asks that the range stays allocated).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "discard") && strcmp(argv[1], "zeroout"))) {
        fprintf(stderr, "usage: blkop discard|zeroout DEVICE OFFSET LENGTH\n");
        return 2;
    }
    int fd = open(argv[2], O_RDWR);
    if (fd < 0) {
        printf("blkop: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    uint64_t range[2] = { strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0) };
    int discard = !strcmp(argv[1], "discard");
    if (ioctl(fd, discard ? BLKDISCARD : BLKZEROOUT, range)) {
        printf("blkop: %s: %s\n", discard ? "BLKDISCARD" : "BLKZEROOUT", strerror(errno));
        return 1;
    }
    return 0;
}
