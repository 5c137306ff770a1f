/*
 * diskbench: the disk benchmark the Linux guest runs on /dev/vda (e2e/guest-init,
 * e2e=diskbench), built static on the host (e2e/run.sh) for the guest's busybox
 * initramfs. O_DIRECT throughout, so the guest's page cache is out of the way:
 *
 *   seqwrite  1 MiB writes over the first MIB MiB, once   (MiB/s)
 *   seqread   1 MiB reads of the same, once                (MiB/s)
 *   randread  4 KiB at queue depth 1 for SECONDS           (IOPS, latency)
 *   randread  4 KiB at queue depth 16 for SECONDS          (IOPS)
 *   randwrite 4 KiB at queue depth 16 for SECONDS          (IOPS)
 *
 * Queue depth N is N threads, each with one pread/pwrite in flight. Each line
 * also gives the requests the guest's block layer completed for the phase
 * (/sys/block/NAME/stat), which may differ from the calls when the driver
 * splits or merges them.
 *
 *   diskbench /dev/vda MIB SECONDS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int fd;
static uint64_t span;      /* bytes of the device the phases use */
static double seconds;     /* length of each timed phase */
static const char *stat_path;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "diskbench: %s: %s\n", what, strerror(errno));
    printf("diskbench: failed: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Requests completed by the block layer so far: reads + writes + flushes. */
static unsigned long long requests(void)
{
    unsigned long long f[17] = { 0 };
    if (!stat_path)
        return 0;
    FILE *s = fopen(stat_path, "r");
    if (!s)
        die(stat_path);
    int n = 0;
    while (n < 17 && fscanf(s, "%llu", &f[n]) == 1)
        n++;
    fclose(s);
    return f[0] + f[4] + (n > 15 ? f[15] : 0);
}

static void *aligned(size_t len)
{
    void *p;
    if (posix_memalign(&p, 4096, len))
        die("posix_memalign");
    memset(p, 0x5a, len);
    return p;
}

static void sequential(int write)
{
    const size_t bs = 1 << 20;
    char *buf = aligned(bs);
    unsigned long long r0 = requests();
    double t0 = now();
    for (uint64_t off = 0; off < span; off += bs) {
        ssize_t n = write ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
        if (n != (ssize_t)bs)
            die(write ? "pwrite 1 MiB" : "pread 1 MiB");
    }
    if (write && fdatasync(fd))
        die("fdatasync");
    double t = now() - t0;
    printf("diskbench: seq%s 1M: %llu MiB in %.3f s = %.1f MiB/s, %llu requests\n", write ? "write" : "read",
           (unsigned long long)(span >> 20), t, (span >> 20) / t, requests() - r0);
    free(buf);
}

struct worker {
    pthread_t thread;
    int write;
    uint64_t seed;
    double deadline;
    unsigned long long ops;
    double busy;           /* sum of the calls' latencies */
    double max;
};

static void *random_io(void *arg)
{
    struct worker *w = arg;
    char *buf = aligned(4096);
    uint64_t x = w->seed;
    uint64_t blocks = span / 4096;
    for (;;) {
        double t = now();
        if (t >= w->deadline)
            break;
        /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off_t off = (off_t)(x % blocks) * 4096;
        ssize_t n = w->write ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off);
        if (n != 4096)
            die(w->write ? "pwrite 4 KiB" : "pread 4 KiB");
        double d = now() - t;
        w->busy += d;
        if (d > w->max)
            w->max = d;
        w->ops++;
    }
    free(buf);
    return NULL;
}

static void random_phase(int write, int depth)
{
    struct worker w[64];
    unsigned long long r0 = requests();
    double t0 = now();
    for (int i = 0; i < depth; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].write = write;
        w[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1) + write;
        w[i].deadline = t0 + seconds;
        if (pthread_create(&w[i].thread, NULL, random_io, &w[i]))
            die("pthread_create");
    }
    unsigned long long ops = 0;
    double busy = 0, max = 0;
    for (int i = 0; i < depth; i++) {
        pthread_join(w[i].thread, NULL);
        ops += w[i].ops;
        busy += w[i].busy;
        if (w[i].max > max)
            max = w[i].max;
    }
    if (write && fdatasync(fd))
        die("fdatasync");
    double t = now() - t0;
    printf("diskbench: rand%s 4K QD%d: %llu in %.3f s = %.0f IOPS, latency avg %.0f us max %.0f us, %llu requests\n",
           write ? "write" : "read", depth, ops, t, ops / t, busy / ops * 1e6, max * 1e6, requests() - r0);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: diskbench DEVICE MIB SECONDS\n");
        return 2;
    }
    span = strtoull(argv[2], NULL, 10) << 20;
    seconds = strtod(argv[3], NULL);
    const char *name = strrchr(argv[1], '/');
    name = name ? name + 1 : argv[1];
    static char path[256];
    setvbuf(stdout, NULL, _IOLBF, 0);
    fd = open(argv[1], O_RDWR | O_DIRECT);
    if (fd < 0)
        die(argv[1]);
    /* A regular file (a try on the host) has no block-layer counters. */
    struct stat st;
    if (fstat(fd, &st))
        die("fstat");
    if (S_ISBLK(st.st_mode)) {
        snprintf(path, sizeof path, "/sys/block/%s/stat", name);
        stat_path = path;
    }
    sequential(1);
    sequential(0);
    random_phase(0, 1);
    random_phase(0, 16);
    random_phase(1, 16);
    printf("diskbench: done\n");
    return 0;
}
