/* The machine's floor for the hub benchmark's paced phase: what one core can
 * do when a fan-out is nothing but one send() per subscriber.
 *
 *     send_floor SUBSCRIBERS ROUNDS PACE_MS WARMUP_ROUNDS SERVER_CPU CLIENT_CPU
 *
 * The parent (pinned to SERVER_CPU) plays an ideal server: no WebSocket, no
 * Python, no event loop; every PACE_MS it stamps a 66-byte record (the size
 * of the benchmark's frame) with the time and writes it to each of
 * SUBSCRIBERS loopback TCP connections in turn.  The child (pinned to
 * CLIENT_CPU) reads them all with epoll, as the benchmark's subscribers do,
 * and takes each record's delivery latency.  Printed, one JSON object:
 * the sender's CPU microseconds per send and the receiver's, and the
 * latency p50 / p99 / max over the rounds after the warm-up.  A record out
 * of order or missing, or a run longer than LIMIT_SECONDS, exits non-zero.
 *
 * Whatever a real server adds comes on top of this, so a latency target this
 * program misses cannot be met on the machine by any server.  Only 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD 66 /* bytes: the hub benchmark's frame, 2 + 64 */
#define LIMIT_SECONDS 120

static void die(const char *what) {
    fprintf(stderr, "send_floor: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

static int compare(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        p += n;
        size -= (size_t)n;
    }
}

/* send(), as the server's fan-out does: cheaper than write() on a socket
 * (no file-layer bookkeeping). */
static void send_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        data += n;
        size -= (size_t)n;
    }
}

static void read_all(int fd, void *data, size_t size) {
    char *p = data;
    while (size > 0) {
        ssize_t n = read(fd, p, size);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            die("read");
        }
        p += n;
        size -= (size_t)n;
    }
}

struct reader {
    int fd;
    int have;           /* bytes of a record read so far */
    int64_t next_round; /* records arrive in order, none missing */
    char record[RECORD];
};

/* The subscribers: connect, then read every record and keep its latency. */
static void receive(int port, int subscribers, int rounds, int warmup, int ready, int results) {
    struct reader *readers = calloc((size_t)subscribers, sizeof *readers);
    int64_t kept = (int64_t)subscribers * (rounds - warmup);
    int64_t *latency = malloc(sizeof(int64_t) * (size_t)(kept > 0 ? kept : 1));
    if (readers == NULL || latency == NULL) die("malloc");
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int epoll = epoll_create1(0);
    if (epoll < 0) die("epoll_create1");
    for (int i = 0; i < subscribers; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) die("connect");
        readers[i].fd = fd;
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = &readers[i]};
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) die("epoll_ctl");
    }
    double cpu0 = 0;
    int measuring = 0;
    int64_t expected = (int64_t)subscribers * rounds, received = 0, n_kept = 0;
    int64_t deadline = now_ns() + (int64_t)LIMIT_SECONDS * 1000000000;
    write_all(ready, "r", 1);
    struct epoll_event events[1024];
    while (received < expected) {
        int n = epoll_wait(epoll, events, 1024, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        if (now_ns() > deadline) {
            fprintf(stderr, "send_floor: %lld of %lld records after %d s\n",
                    (long long)received, (long long)expected, LIMIT_SECONDS);
            exit(3);
        }
        for (int e = 0; e < n; e++) {
            struct reader *r = events[e].data.ptr;
            char buffer[4096];
            ssize_t got = read(r->fd, buffer, sizeof buffer);
            if (got <= 0) die("subscriber read");
            int64_t arrived = now_ns();
            for (ssize_t at = 0; at < got;) {
                int take = RECORD - r->have;
                if (take > got - at) take = (int)(got - at);
                memcpy(r->record + r->have, buffer + at, (size_t)take);
                r->have += take;
                at += take;
                if (r->have < RECORD) break;
                r->have = 0;
                int64_t round, stamp;
                memcpy(&round, r->record, 8);
                memcpy(&stamp, r->record + 8, 8);
                if (round != r->next_round++) {
                    fprintf(stderr, "send_floor: subscriber %ld got round %lld, not %lld\n",
                            (long)(r - readers), (long long)round, (long long)r->next_round - 1);
                    exit(4);
                }
                if (round == warmup && !measuring) {
                    measuring = 1;
                    cpu0 = cpu_seconds();
                }
                if (round >= warmup) latency[n_kept++] = arrived - stamp;
                received++;
            }
        }
    }
    double cpu = cpu_seconds() - cpu0;
    qsort(latency, (size_t)n_kept, sizeof *latency, compare);
    double result[4] = {
        cpu * 1e6 / (double)(n_kept > 0 ? n_kept : 1),
        latency[n_kept / 2] / 1e6,
        latency[(n_kept * 99) / 100] / 1e6,
        latency[n_kept - 1] / 1e6,
    };
    write_all(results, result, sizeof result);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr,
                "usage: send_floor SUBSCRIBERS ROUNDS PACE_MS WARMUP_ROUNDS SERVER_CPU CLIENT_CPU\n");
        return 2;
    }
    int subscribers = atoi(argv[1]), rounds = atoi(argv[2]), pace_ms = atoi(argv[3]);
    int warmup = atoi(argv[4]), server_cpu = atoi(argv[5]), client_cpu = atoi(argv[6]);
    if (subscribers < 1 || rounds <= warmup || warmup < 0 || pace_ms < 1) {
        fprintf(stderr, "send_floor: need SUBSCRIBERS >= 1, ROUNDS > WARMUP_ROUNDS >= 0, PACE_MS >= 1\n");
        return 2;
    }
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 4096) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &length) != 0)
        die("listen");
    int ready[2], results[2];
    if (pipe(ready) != 0 || pipe(results) != 0) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        pin(client_cpu);
        close(listener);
        receive(ntohs(address.sin_port), subscribers, rounds, warmup, ready[1], results[1]);
    }
    pin(server_cpu);
    int *fds = malloc(sizeof(int) * (size_t)subscribers);
    if (fds == NULL) die("malloc");
    int one = 1;
    for (int i = 0; i < subscribers; i++) {
        fds[i] = accept(listener, NULL, NULL);
        if (fds[i] < 0) die("accept");
        /* as a WebSocket server sets it: a frame goes out when written */
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char signal;
    read_all(ready[0], &signal, 1);

    char record[RECORD];
    memset(record, '.', sizeof record);
    double cpu0 = 0;
    int64_t start = now_ns();
    for (int64_t round = 0; round < rounds; round++) {
        if (round == warmup) cpu0 = cpu_seconds();
        int64_t due = start + round * (int64_t)pace_ms * 1000000;
        int64_t wait = due - now_ns();
        if (wait > 0) {
            struct timespec pause = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
            nanosleep(&pause, NULL);
        }
        int64_t stamp = now_ns();
        memcpy(record, &round, 8);
        memcpy(record + 8, &stamp, 8);
        for (int i = 0; i < subscribers; i++) send_all(fds[i], record, RECORD);
    }
    double sender_cpu = cpu_seconds() - cpu0;
    double result[4];
    read_all(results[0], result, sizeof result);
    int status;
    waitpid(child, &status, 0);
    printf("{\"subscribers\": %d, \"rounds\": %d, \"warmup\": %d, \"pace_ms\": %d, "
           "\"sender_us_per_send\": %.3f, \"receiver_us_per_read\": %.3f, "
           "\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
           subscribers, rounds, warmup, pace_ms,
           sender_cpu * 1e6 / ((double)subscribers * (rounds - warmup)), result[0], result[1],
           result[2], result[3]);
    return 0;
}
