/*
 * tsvmm-agent: runs commands in the guest for the host (tsvmm's vm.exec()).
 *
 * It listens on a vsock port (52 unless --port says otherwise) and serves
 * each connection in a process of its own: the first frame names a command,
 * which runs as `/bin/sh -c COMMAND` in a new session (so a process group of
 * its own) with stdin, stdout and stderr on pipes; the agent forwards the
 * host's stdin to it and its output to the host, then reports the exit status.
 * docs/exec-agent.md describes the protocol; src/exec/protocol.ts is the
 * host's side of it.
 *
 *   build:  cc -static -Os -Wall -Wextra -o tsvmm-agent tsvmm-agent.c
 *   run:    tsvmm-agent [--port N] &        (in the guest, early in init)
 *           tsvmm-agent --unix PATH &       (on a host, for tests)
 *
 * Needs Linux 5.3 or later (pidfd_open), and for vsock a kernel with
 * CONFIG_VIRTIO_VSOCKETS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* The default port: AGENT_VSOCK_PORT in src/exec/protocol.ts. */
#define AGENT_VSOCK_PORT 52

/* Frames: [type u8][payload length u32 little-endian][payload]. The numbers
 * are FrameType and MAX_FRAME_PAYLOAD_BYTES in src/exec/protocol.ts. */
#define FRAME_HEADER_BYTES 5
#define MAX_FRAME_PAYLOAD (1u << 20)
enum frame_type {
	FRAME_EXEC = 0x01,      /* host: the command line; first, and once */
	FRAME_STDIN = 0x02,     /* host: bytes for the command's stdin */
	FRAME_STDIN_EOF = 0x03, /* host: no more stdin (closes the pipe) */
	FRAME_KILL = 0x04,      /* host: u32 signal number, for the whole process group */
	FRAME_STDOUT = 0x81,    /* agent: bytes the command wrote to stdout */
	FRAME_STDERR = 0x82,    /* agent: bytes the command wrote to stderr */
	FRAME_EXIT = 0x83,      /* agent: u32 status (128 + n for signal n); last */
	FRAME_ERROR = 0x84,     /* agent: a message; last (the request was refused) */
};

/* Output is forwarded in frames of at most one pipe's worth. */
#define OUTPUT_CHUNK_BYTES 65536
/* Stdin the command has not read yet is kept up to this much; beyond it the
 * agent stops reading the connection, which slows the host down. */
#define STDIN_BUFFER_LIMIT (4u << 20)
/* After its last frame the agent waits this long for the host to close
 * (see close_gracefully()). */
#define LINGER_MS 5000
#define LISTEN_BACKLOG 64

/* One connection: the frame being read, the command and its pipes. */
struct connection {
	int sock;
	uint8_t header[FRAME_HEADER_BYTES];
	size_t header_have;
	uint8_t *payload; /* allocated once the header is complete */
	uint32_t payload_length;
	size_t payload_have;
	pid_t pid;          /* the shell, also its process group; 0 before EXEC */
	int pidfd;          /* readable once the shell exits; -1 after */
	int stdin_fd, stdout_fd, stderr_fd; /* our ends of the pipes; -1 once closed */
	bool stdin_eof;     /* STDIN_EOF received */
	uint8_t *pending;   /* stdin received, not yet written to the pipe */
	size_t pending_start, pending_end;
};

/* ---- Small helpers ---- */

static void put_u32(uint8_t *to, uint32_t value)
{
	for (int i = 0; i < 4; i++) to[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t get_u32(const uint8_t *from)
{
	return (uint32_t)from[0] | (uint32_t)from[1] << 8 | (uint32_t)from[2] << 16 | (uint32_t)from[3] << 24;
}

static int write_all(int fd, const void *data, size_t length)
{
	const uint8_t *at = data;
	while (length > 0) {
		ssize_t n = write(fd, at, length);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return -1;
		at += n;
		length -= (size_t)n;
	}
	return 0;
}

static int send_frame(int sock, enum frame_type type, const void *payload, uint32_t length)
{
	uint8_t header[FRAME_HEADER_BYTES] = { (uint8_t)type };
	put_u32(header + 1, length);
	if (write_all(sock, header, sizeof header) < 0) return -1;
	return write_all(sock, payload, length);
}

static void send_error(struct connection *c, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void send_error(struct connection *c, const char *format, ...)
{
	char message[256];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof message, format, args);
	va_end(args);
	send_frame(c->sock, FRAME_ERROR, message, (uint32_t)strlen(message));
}

static void close_fd(int *fd)
{
	if (*fd >= 0) close(*fd);
	*fd = -1;
}

/*
 * Ends a connection after our last frame without losing it: closing a socket
 * with unread data in it resets the connection, and the host could lose the
 * frames still on their way. So shut our side down, read and drop whatever
 * the host still sends until it closes (it does when it sees the last frame).
 */
static void close_gracefully(int sock)
{
	uint8_t discard[4096];
	shutdown(sock, SHUT_WR);
	struct pollfd p = { .fd = sock, .events = POLLIN };
	while (poll(&p, 1, LINGER_MS) > 0 && read(sock, discard, sizeof discard) > 0) {}
	close(sock);
}

/* ---- Running the command ---- */

/*
 * Starts `/bin/sh -c command` in a new session with its stdio on pipes, and
 * returns only once the shell runs: a KILL right after EXEC then always finds
 * the process group. A pipe closed on exec tells us: it ends empty when exec
 * succeeded, and carries errno when it failed. Returns -1 with errno set.
 */
static int start_command(struct connection *c, const char *command)
{
	enum { IN, OUT, ERR, EXEC_STATUS, PIPES };
	int pipes[PIPES][2];
	int made = 0;
	while (made < PIPES && pipe2(pipes[made], O_CLOEXEC) == 0) made++;
	pid_t pid = made == PIPES ? fork() : -1;
	if (pid < 0) {
		int error = errno;
		for (int i = 0; i < made; i++) close(pipes[i][0]), close(pipes[i][1]);
		errno = error;
		return -1;
	}
	if (pid == 0) {
		setsid();
		dup2(pipes[IN][0], STDIN_FILENO); /* dup2 clears close-on-exec on the copies */
		dup2(pipes[OUT][1], STDOUT_FILENO);
		dup2(pipes[ERR][1], STDERR_FILENO);
		/* Ignored signals and the signal mask survive exec: give the
		 * command the defaults, not what we or our starter set (a shell
		 * starting us with `&` ignores SIGINT and SIGQUIT). */
		for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		int error = errno;
		write_all(pipes[EXEC_STATUS][1], &error, sizeof error);
		_exit(127);
	}
	close(pipes[IN][0]);
	close(pipes[OUT][1]);
	close(pipes[ERR][1]);
	close(pipes[EXEC_STATUS][1]);
	int exec_error = 0;
	ssize_t n;
	while ((n = read(pipes[EXEC_STATUS][0], &exec_error, sizeof exec_error)) < 0 && errno == EINTR) {}
	close(pipes[EXEC_STATUS][0]);
	int pidfd = n == 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd < 0) {
		int error = n == 0 ? errno : exec_error;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pipes[IN][1]);
		close(pipes[OUT][0]);
		close(pipes[ERR][0]);
		errno = error;
		return -1;
	}
	/* The loop in serve() waits in poll() and must never block on a pipe:
	 * a command blocked writing its stdout would never read its stdin. */
	for (int i = IN; i <= ERR; i++) fcntl(pipes[i][i == IN ? 1 : 0], F_SETFL, O_NONBLOCK);
	c->pid = pid;
	c->pidfd = pidfd;
	c->stdin_fd = pipes[IN][1];
	c->stdout_fd = pipes[OUT][0];
	c->stderr_fd = pipes[ERR][0];
	return 0;
}

static bool command_running(const struct connection *c)
{
	return c->pidfd >= 0;
}

/* The host went away, or broke the protocol: stop the whole command. */
static void stop_command(struct connection *c)
{
	if (!command_running(c)) return;
	kill(-c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	close_fd(&c->pidfd);
	/* The rest of the group is reaped by the listener (it is a subreaper). */
}

static size_t pending_bytes(const struct connection *c)
{
	return c->pending_end - c->pending_start;
}

static void queue_stdin(struct connection *c, const uint8_t *data, size_t length)
{
	if (c->stdin_fd < 0) return; /* the command closed its stdin: drop it */
	size_t kept = pending_bytes(c);
	if (kept > 0) memmove(c->pending, c->pending + c->pending_start, kept);
	c->pending = realloc(c->pending, kept + length);
	if (c->pending == NULL) abort();
	memcpy(c->pending + kept, data, length);
	c->pending_start = 0;
	c->pending_end = kept + length;
}

/* Writes what the pipe takes now; closes it after STDIN_EOF once all is written. */
static void feed_stdin(struct connection *c)
{
	while (c->stdin_fd >= 0 && pending_bytes(c) > 0) {
		ssize_t n = write(c->stdin_fd, c->pending + c->pending_start, pending_bytes(c));
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && errno == EAGAIN) return;
		if (n < 0) { /* EPIPE: nobody reads stdin any more */
			close_fd(&c->stdin_fd);
			break;
		}
		c->pending_start += (size_t)n;
	}
	if (c->stdin_fd < 0 || pending_bytes(c) == 0) c->pending_start = c->pending_end = 0;
	if (c->stdin_eof && pending_bytes(c) == 0) close_fd(&c->stdin_fd);
}

/*
 * Forwards up to `limit` bytes from an output pipe, closing it at its end.
 * Returns how many bytes went to the host (0 if none were there), or -1 if
 * the host is gone.
 */
static ssize_t forward_output(struct connection *c, int *fd, enum frame_type type, size_t limit)
{
	uint8_t chunk[OUTPUT_CHUNK_BYTES];
	if (limit > sizeof chunk) limit = sizeof chunk;
	ssize_t n;
	while ((n = read(*fd, chunk, limit)) < 0 && errno == EINTR) {}
	if (n < 0 && errno == EAGAIN) return 0;
	if (n <= 0) {
		close_fd(fd);
		return 0;
	}
	return send_frame(c->sock, type, chunk, (uint32_t)n) < 0 ? -1 : n;
}

/*
 * Forwards what the command wrote before it exited: it is all in the pipes
 * now, and FIONREAD says how much. Later output, from background processes
 * the command left behind, is not the command's: it is not waited for.
 */
static int forward_remaining_output(struct connection *c, int *fd, enum frame_type type)
{
	int left = 0;
	if (*fd >= 0 && ioctl(*fd, FIONREAD, &left) < 0) left = 0;
	while (*fd >= 0 && left > 0) {
		ssize_t sent = forward_output(c, fd, type, (size_t)left);
		if (sent < 0) return -1;
		if (sent == 0) break;
		left -= (int)sent;
	}
	close_fd(fd);
	return 0;
}

/* The shell has exited: report its output and status, then close. */
static void finish(struct connection *c)
{
	int status = 0;
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {}
	close_fd(&c->pidfd);
	close_fd(&c->stdin_fd);
	if (forward_remaining_output(c, &c->stdout_fd, FRAME_STDOUT) < 0 ||
	    forward_remaining_output(c, &c->stderr_fd, FRAME_STDERR) < 0) return;
	/* As shells report it: 128 + n for a command killed by signal n. */
	uint32_t code = WIFSIGNALED(status) ? 128 + (uint32_t)WTERMSIG(status) : (uint32_t)WEXITSTATUS(status);
	uint8_t payload[4];
	put_u32(payload, code);
	if (send_frame(c->sock, FRAME_EXIT, payload, sizeof payload) == 0) close_gracefully(c->sock);
}

/* ---- Reading the host's frames ---- */

static bool sent_by_host(uint8_t type)
{
	return type == FRAME_EXEC || type == FRAME_STDIN || type == FRAME_STDIN_EOF || type == FRAME_KILL;
}

/* Acts on one complete frame. Returns -1 after sending ERROR for a bad one. */
static int handle_frame(struct connection *c, uint8_t type, uint8_t *payload, uint32_t length)
{
	if (c->pid == 0 && type != FRAME_EXEC) {
		send_error(c, "the first frame must be EXEC (0x%02x), got 0x%02x", FRAME_EXEC, type);
		return -1;
	}
	switch (type) {
	case FRAME_EXEC:
		if (c->pid != 0) {
			send_error(c, "EXEC sent twice on one connection");
			return -1;
		}
		if (memchr(payload, '\0', length) != NULL) {
			send_error(c, "the command contains a NUL byte");
			return -1;
		}
		payload[length] = '\0'; /* read_frames() allocated room for it */
		if (start_command(c, (char *)payload) < 0) {
			send_error(c, "cannot run /bin/sh -c: %s", strerror(errno));
			return -1;
		}
		return 0;
	case FRAME_STDIN:
		if (c->stdin_eof) {
			send_error(c, "STDIN after STDIN_EOF");
			return -1;
		}
		queue_stdin(c, payload, length);
		return 0;
	case FRAME_STDIN_EOF:
		c->stdin_eof = true;
		feed_stdin(c);
		return 0;
	case FRAME_KILL: {
		uint32_t sig = length == 4 ? get_u32(payload) : 0;
		if (sig < 1 || sig >= NSIG) {
			send_error(c, "KILL needs a 4-byte signal number from 1 to %d", NSIG - 1);
			return -1;
		}
		if (command_running(c)) kill(-c->pid, (int)sig);
		return 0;
	}
	default: /* read_frames() passes only sent_by_host() types */
		return -1;
	}
}

/*
 * Reads the frames the connection holds now (without blocking), acting on
 * each complete one. Stops early while the command's unread stdin is over
 * its limit. Returns -1 when the connection is over: the host closed it or
 * it failed (nothing sent), or a bad frame (ERROR sent).
 */
static int read_frames(struct connection *c)
{
	while (pending_bytes(c) < STDIN_BUFFER_LIMIT) {
		bool in_header = c->header_have < FRAME_HEADER_BYTES;
		uint8_t *to = in_header ? c->header + c->header_have : c->payload + c->payload_have;
		size_t want = in_header ? FRAME_HEADER_BYTES - c->header_have : c->payload_length - c->payload_have;
		ssize_t n = want == 0 ? 0 : recv(c->sock, to, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && errno == EAGAIN) return 0;
		if (n < 0 || (n == 0 && want > 0)) return -1; /* closed or failed */
		if (in_header) {
			c->header_have += (size_t)n;
			if (c->header_have < FRAME_HEADER_BYTES) continue;
			c->payload_length = get_u32(c->header + 1);
			/* Checked before reading the payload: junk must not make us allocate. */
			if (!sent_by_host(c->header[0])) {
				send_error(c, "unknown frame type 0x%02x", c->header[0]);
				return -1;
			}
			if (c->payload_length > MAX_FRAME_PAYLOAD) {
				send_error(c, "a frame of %u bytes is over the limit of %u", c->payload_length, MAX_FRAME_PAYLOAD);
				return -1;
			}
			c->payload = malloc(c->payload_length + 1); /* + 1: EXEC's terminating NUL */
			if (c->payload == NULL) abort();
			c->payload_have = 0;
			continue;
		}
		c->payload_have += (size_t)n;
		if (c->payload_have < c->payload_length) continue;
		int result = handle_frame(c, c->header[0], c->payload, c->payload_length);
		free(c->payload);
		c->payload = NULL;
		c->header_have = 0;
		if (result < 0) return -1;
	}
	return 0;
}

/* ---- One connection, in its own process ---- */

/* Set in a connection process when the agent stopped (see serve_connection). */
static volatile sig_atomic_t agent_stopped;

static void note_agent_stopped(int sig)
{
	(void)sig;
	agent_stopped = 1;
}

static void serve(int sock)
{
	struct connection c = { .sock = sock, .pidfd = -1, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 };
	while (!agent_stopped) {
		/* Slot order matters below: 0 socket, 1 shell exit, 2 stdin, 3 stdout, 4 stderr. */
		struct pollfd p[5] = {
			/* Over the stdin limit, only watch for the host hanging up. */
			{ .fd = sock, .events = pending_bytes(&c) < STDIN_BUFFER_LIMIT ? POLLIN : POLLRDHUP },
			{ .fd = c.pidfd, .events = POLLIN },
			{ .fd = pending_bytes(&c) > 0 ? c.stdin_fd : -1, .events = POLLOUT },
			{ .fd = c.stdout_fd, .events = POLLIN },
			{ .fd = c.stderr_fd, .events = POLLIN },
		};
		if (poll(p, 5, -1) < 0) {
			if (errno == EINTR) continue; /* the loop's test sees a stopped agent */
			break;
		}
		if (p[0].revents & POLLIN) {
			if (read_frames(&c) < 0) break;
		} else if (p[0].revents) {
			break; /* hung up (or failed) while we were not reading */
		}
		if (p[2].revents) feed_stdin(&c);
		if (p[3].revents && forward_output(&c, &c.stdout_fd, FRAME_STDOUT, OUTPUT_CHUNK_BYTES) < 0) break;
		if (p[4].revents && forward_output(&c, &c.stderr_fd, FRAME_STDERR, OUTPUT_CHUNK_BYTES) < 0) break;
		if (p[1].revents) {
			finish(&c);
			return;
		}
	}
	/* The host is gone, broke the protocol or the agent stopped before EXIT:
	 * stop the command. Closing gracefully lets an ERROR frame reach a host
	 * that is still there. */
	stop_command(&c);
	close_gracefully(sock);
}

/* ---- The listener ---- */

static const char *unix_path; /* removed when the agent is stopped */

/* Reaps every child that has exited: connections, and what they left behind. */
static void reap_children(int sig)
{
	(void)sig;
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0) {}
	errno = saved;
}

static void remove_socket_and_exit(int sig)
{
	(void)sig;
	if (unix_path != NULL) unlink(unix_path);
	_exit(0);
}

static void usage_error(const char *problem, const char *value)
{
	fprintf(stderr, "tsvmm-agent: %s%s\nusage: tsvmm-agent [--port N | --unix PATH]\n", problem, value);
	exit(2);
}

static int listen_on(uint32_t port)
{
	int sock = socket(unix_path != NULL ? AF_UNIX : AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		fprintf(stderr, "tsvmm-agent: cannot make a socket: %s%s\n", strerror(errno),
			unix_path != NULL ? "" : " (does the kernel have CONFIG_VIRTIO_VSOCKETS?)");
		exit(1);
	}
	int bound;
	if (unix_path != NULL) {
		struct sockaddr_un address = { .sun_family = AF_UNIX };
		if (strlen(unix_path) >= sizeof address.sun_path) usage_error("socket path too long: ", unix_path);
		strcpy(address.sun_path, unix_path);
		bound = bind(sock, (struct sockaddr *)&address, sizeof address);
	} else {
		struct sockaddr_vm address = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
		bound = bind(sock, (struct sockaddr *)&address, sizeof address);
	}
	if (bound < 0 || listen(sock, LISTEN_BACKLOG) < 0) {
		if (unix_path != NULL) fprintf(stderr, "tsvmm-agent: cannot listen on %s: %s\n", unix_path, strerror(errno));
		else fprintf(stderr, "tsvmm-agent: cannot listen on vsock port %u: %s\n", port, strerror(errno));
		exit(1);
	}
	return sock;
}

/*
 * A connection's process. It waits for its own command, so SIGCHLD gets its
 * default back. When the agent stops (SIGTERM, or killed), the kernel sends
 * this process SIGTERM (PR_SET_PDEATHSIG), and it stops its command's whole
 * process group and ends, as when the host hangs up: an agent that stops
 * leaves nothing running behind it.
 */
static void serve_connection(int sock, pid_t listener_pid)
{
	signal(SIGCHLD, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	struct sigaction on_stop = { .sa_handler = note_agent_stopped }; /* no SA_RESTART: poll() returns */
	sigaction(SIGTERM, &on_stop, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != listener_pid) _exit(0); /* the agent stopped before the line above */
	serve(sock);
	_exit(0);
}

int main(int argc, char **argv)
{
	uint32_t port = AGENT_VSOCK_PORT;
	for (int i = 1; i < argc; i++) {
		bool port_option = strcmp(argv[i], "--port") == 0, unix_option = strcmp(argv[i], "--unix") == 0;
		if (!port_option && !unix_option) usage_error("unknown argument: ", argv[i]);
		if (i + 1 == argc) usage_error("a value must follow ", argv[i]);
		const char *value = argv[++i];
		if (unix_option) {
			unix_path = value;
			continue;
		}
		char *end;
		errno = 0;
		unsigned long number = strtoul(value, &end, 10);
		/* 0xFFFFFFFF is VMADDR_PORT_ANY, not a port. */
		if (errno != 0 || *end != '\0' || end == value || value[0] == '-' || number >= VMADDR_PORT_ANY)
			usage_error("not a vsock port: ", value);
		port = (uint32_t)number;
	}
	/* Pipes must never land on fds 0-2 (dup2 onto itself would keep
	 * close-on-exec), so make sure they are taken, as init may not. */
	int fd;
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO) {}
	if (fd > STDERR_FILENO) close(fd);

	/* A host that goes away must not kill us: writes fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	struct sigaction on_child = { .sa_handler = reap_children, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	sigaction(SIGCHLD, &on_child, NULL);
	struct sigaction on_stop = { .sa_handler = remove_socket_and_exit };
	sigaction(SIGTERM, &on_stop, NULL);
	sigaction(SIGINT, &on_stop, NULL);
	/* Processes a command leaves behind are re-parented to us when their
	 * parent dies, and reaped here, instead of burdening init. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	int listener = listen_on(port);
	for (;;) {
		int sock = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (sock < 0) {
			if (errno != EINTR && errno != ECONNABORTED) usleep(100 * 1000); /* out of fds: do not spin */
			continue;
		}
		pid_t listener_pid = getpid();
		pid_t pid = fork();
		if (pid == 0) {
			close(listener);
			serve_connection(sock, listener_pid);
		}
		if (pid < 0) {
			struct connection c = { .sock = sock };
			send_error(&c, "cannot fork: %s", strerror(errno));
		}
		close(sock);
	}
}
