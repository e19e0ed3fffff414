/* A FUSE daemon that answers INIT and then nothing (a server that stopped answering), and a reader to wait on it.
   fusestall mount DIR     mounts DIR (type fuse.tfastall, allow_other), prints "ready", then waits forever
   fusestall read DIR      holds DIR open (O_PATH), catches SIGUSR1, opens DIR/file: blocks in request_wait_answer */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static void caught(int sig) { (void)sig; }

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "read") == 0) {
        struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = caught;
        sigaction(SIGUSR1, &sa, NULL);
        /* O_PATH asks nothing of the daemon; chdir would (FUSE_ACCESS) and block before cwd moved. */
        int dir = open(argv[2], O_PATH | O_DIRECTORY);
        if (dir < 0) { perror("open O_PATH"); return 1; }
        int fd = openat(dir, "file", O_RDONLY);
        printf("open returned %d (%s)\n", fd, fd < 0 ? strerror(errno) : "ok");
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "mount") != 0) { fprintf(stderr, "usage: fusestall mount|read DIR\n"); return 2; }
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) { perror("/dev/fuse"); return 1; }
    char opts[128];
    snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd);
    if (mount("tfastall", argv[2], "fuse.tfastall", MS_NOSUID | MS_NODEV, opts) != 0) { perror("mount"); return 1; }
    static char buf[FUSE_MIN_READ_BUFFER * 2];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < (ssize_t)sizeof(struct fuse_in_header)) { perror("read INIT"); return 1; }
    struct fuse_in_header *in = (struct fuse_in_header *)buf;
    struct fuse_init_in *init = (struct fuse_init_in *)(buf + sizeof *in);
    if (in->opcode != FUSE_INIT) { fprintf(stderr, "first request %u, not INIT\n", in->opcode); return 1; }
    struct { struct fuse_out_header h; struct fuse_init_out o; } reply;
    memset(&reply, 0, sizeof reply);
    reply.h.len = sizeof reply; reply.h.unique = in->unique;
    reply.o.major = FUSE_KERNEL_VERSION; reply.o.minor = init->minor < FUSE_KERNEL_MINOR_VERSION ? init->minor : FUSE_KERNEL_MINOR_VERSION;
    reply.o.max_readahead = init->max_readahead; reply.o.max_write = 4096; reply.o.time_gran = 1;
    reply.o.max_background = 16; reply.o.congestion_threshold = 12;
    if (write(fd, &reply, sizeof reply) != (ssize_t)sizeof reply) { perror("write INIT"); return 1; }
    printf("ready\n"); fflush(stdout);
    for (;;) pause();   /* never reads another request: every one waits */
}
