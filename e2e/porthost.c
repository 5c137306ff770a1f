/* The host side of a console port in the end-to-end test (in-vm.sh's
 * ports section), built static: the test VM has no socat, and busybox's nc
 * has no Unix sockets.
 *
 *   porthost rt SOCK FILE            connect; print the guest's first line;
 *                                    send FILE while reading as many bytes
 *                                    back; say whether they are FILE's; close
 *   porthost send SOCK BYTES CHUNK reply|close
 *                                    connect; print the guest's first line;
 *                                    send BYTES of stdin in writes of CHUNK;
 *                                    then print the guest's next line (reply)
 *                                    or close at once (close)
 *   porthost recv SOCK BYTES CHUNK [PID AT]  (PID: SIGKILLed after AT bytes) connect (SOCK "-": stdin); copy BYTES to
 *                                    stdout in reads of CHUNK; then read on to
 *                                    the end (stdin) or close (a socket)
 *   porthost pty COLS ROWS COLS2 ROWS2 MARK CMD...
 *                                    run CMD with stdin a new terminal of
 *                                    COLS x ROWS (its controlling terminal),
 *                                    copy CMD's stdout to ours; once MARK has
 *                                    appeared in it, resize the
 *                                    terminal to COLS2 x ROWS2 and send CMD
 *                                    SIGWINCH; exit with CMD's status
 *
 * A socket that is not there yet, or not listening, is retried for 120 s.
 * send and recv print on stderr "porthost: N bytes in S s (R MiB/s)", timed
 * from the first byte moved to the last (recv) or to the guest's reply
 * (send reply).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "porthost: %s: %s\n", what, strerror(errno));
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *path)
{
    if (strcmp(path, "-") == 0)
        return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "porthost: %s: path too long\n", path);
        exit(2);
    }
    strcpy(addr.sun_path, path);
    for (int i = 0; i < 1200; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return fd;
        if (errno != ENOENT && errno != ECONNREFUSED)
            die(path);
        close(fd);
        usleep(100000);
    }
    fprintf(stderr, "porthost: %s: nobody listened for 120 s\n", path);
    exit(2);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write");
        buf += n;
        len -= n;
    }
}

/* Reads one line, byte by byte (nothing after it is taken), and prints it. */
static void print_line(int fd)
{
    char c;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0) {
            printf("porthost: end of file before a line\n");
            fflush(stdout);
            return;
        }
        putchar(c);
        if (c == '\n')
            break;
    }
    fflush(stdout);
}

static void report(unsigned long long bytes, double t0, double t1)
{
    double s = t1 - t0;
    fprintf(stderr, "porthost: %llu bytes in %.3f s (%.2f MiB/s)\n", bytes, s, s > 0 ? bytes / s / 1048576 : 0.0);
}

static int roundtrip(const char *path, const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        die(file);
    fseek(f, 0, SEEK_END);
    size_t len = ftell(f);
    rewind(f);
    char *want = malloc(len + 1), *got = malloc(len + 1);
    if (!want || !got || fread(want, 1, len, f) != len)
        die("reading the file");
    int fd = connect_to(path);
    print_line(fd);
    size_t sent = 0, back = 0;
    while (back < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&p, 1, 60000) <= 0) {
            printf("porthost: nothing moved for 60 s: %zu sent, %zu back\n", sent, back);
            return 1;
        }
        if (p.revents & POLLOUT) {
            ssize_t n = write(fd, want + sent, len - sent > 4096 ? 4096 : len - sent);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                die("write");
            if (n > 0)
                sent += n;
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(fd, got + back, len - back);
            if (n < 0 && errno != EINTR)
                die("read");
            if (n == 0) {
                printf("porthost: end of file after %zu of %zu bytes back\n", back, len);
                return 1;
            }
            if (n > 0)
                back += n;
        }
    }
    if (memcmp(want, got, len) != 0) {
        size_t i = 0;
        while (want[i] == got[i])
            i++;
        printf("porthost: %zu bytes back, the first difference at byte %zu\n", len, i);
        return 1;
    }
    printf("porthost: %zu bytes back, byte-exact\n", len);
    close(fd);
    return 0;
}

static int send_bytes(const char *path, unsigned long long bytes, size_t chunk, int reply)
{
    char *buf = malloc(chunk);
    if (!buf)
        die("malloc");
    int fd = connect_to(path);
    print_line(fd);
    double t0 = 0;
    unsigned long long sent = 0;
    while (sent < bytes) {
        size_t want = bytes - sent < chunk ? bytes - sent : chunk, have = 0;
        while (have < want) {
            ssize_t n = read(0, buf + have, want - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                die("stdin");
            if (n == 0) {
                fprintf(stderr, "porthost: stdin ended after %llu bytes\n", sent + have);
                return 1;
            }
            have += n;
        }
        if (sent == 0)
            t0 = now();
        write_all(fd, buf, want);
        sent += want;
    }
    if (reply)
        print_line(fd);
    report(sent, t0, now());
    close(fd);
    return 0;
}

/* With kill_pid > 0: SIGKILL to kill_pid once kill_at bytes came (the
 * reader sees them first: no test shell polling a file's size on a busy
 * CPU). */
static pid_t kill_pid;
static unsigned long long kill_at;

static int recv_bytes(const char *path, unsigned long long bytes, size_t chunk)
{
    char *buf = malloc(chunk);
    if (!buf)
        die("malloc");
    int fd = connect_to(path);
    double t0 = 0;
    unsigned long long got = 0;
    while (got < bytes) {
        size_t want = bytes - got < chunk ? bytes - got : chunk;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0)
            break;
        if (got == 0)
            t0 = now();
        write_all(1, buf, n);
        got += n;
        if (kill_pid > 0 && got >= kill_at) {
            kill(kill_pid, SIGKILL);
            kill_pid = 0;
        }
    }
    double t1 = now();
    if (got < bytes) {
        fprintf(stderr, "porthost: end of file after %llu of %llu bytes\n", got, bytes);
        return 1;
    }
    report(got, t0, t1);
    if (fd == 0) {
        unsigned long long more = 0;
        ssize_t n;
        while ((n = read(fd, buf, chunk)) > 0)
            more += n;
        if (more) {
            fprintf(stderr, "porthost: %llu bytes more than %llu\n", more, bytes);
            return 1;
        }
    }
    close(fd);
    return 0;
}

static int with_pty(char **argv)
{
    struct winsize ws = {.ws_col = atoi(argv[0]), .ws_row = atoi(argv[1])};
    struct winsize ws2 = {.ws_col = atoi(argv[2]), .ws_row = atoi(argv[3])};
    const char *mark = argv[4];
    int out[2];
    if (pipe(out) != 0)
        die("pipe");
    int err = dup(2), master;
    if (err < 0)
        die("dup");
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0)
        die("forkpty");
    if (pid == 0) {
        /* stdin the terminal (forkpty made it the controlling one), stdout
         * the pipe, stderr ours. */
        dup2(out[1], 1);
        dup2(err, 2);
        close(out[0]);
        close(out[1]);
        close(err);
        execvp(argv[5], argv + 5);
        _exit(127);
    }
    close(out[1]);
    close(err);
    char seen[4096];
    size_t have = 0;
    int resized = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        write_all(1, buf, n);
        if (!resized) {
            size_t take = (size_t)n < sizeof(seen) - 1 - have ? (size_t)n : sizeof(seen) - 1 - have;
            memcpy(seen + have, buf, take);
            have += take;
            seen[have] = 0;
            if (strstr(seen, mark)) {
                if (ioctl(master, TIOCSWINSZ, &ws2) != 0)
                    die("TIOCSWINSZ");
                kill(pid, SIGWINCH);
                resized = 1;
            }
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    close(master);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && strcmp(argv[1], "rt") == 0)
        return roundtrip(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "send") == 0)
        return send_bytes(argv[2], strtoull(argv[3], NULL, 0), strtoul(argv[4], NULL, 0), strcmp(argv[5], "reply") == 0);
    if (argc == 5 && strcmp(argv[1], "recv") == 0)
        return recv_bytes(argv[2], strtoull(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
    if (argc == 7 && strcmp(argv[1], "recv") == 0) {
        kill_pid = (pid_t)strtol(argv[5], NULL, 0);
        kill_at = strtoull(argv[6], NULL, 0);
        return recv_bytes(argv[2], strtoull(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
    }
    if (argc >= 8 && strcmp(argv[1], "pty") == 0)
        return with_pty(argv + 2);
    fprintf(stderr, "usage: porthost rt SOCK FILE | send SOCK BYTES CHUNK reply|close | recv SOCK BYTES CHUNK |\n"
                    "       pty COLS ROWS COLS2 ROWS2 MARK CMD...\n");
    return 2;
}
