// Rules a value must follow wherever it enters tsvmm: from the command line
// (validate.ts, which prefixes the option name) or straight into a device
// from a library caller (the vsock and virtio-blk devices). One definition,
// one message, so the two layers cannot disagree. Each rule returns what is
// wrong, or undefined; the caller throws its own error class. This file
// touches no file system, so devices can import it.
import { MAX_DISK_ID_BYTES, MAX_UNIX_SOCKET_PATH_BYTES } from './types.js';

/**
 * The longest suffix tsvmm appends to the vsock socket path: guest
 * connections to port P go to `<socket>_<P>`, and P can be 4294967295.
 */
const VSOCK_PORT_SUFFIX_MAX_BYTES = '_4294967295'.length;

/**
 * The longest vsock socket path: with the longest `_<port>` appended it must
 * still fit sun_path (108 bytes with its NUL, unix(7)). A longer path would
 * work for the listening socket and fail only when the guest connects to a
 * high port, long after start-up.
 */
export const MAX_VSOCK_SOCKET_PATH_BYTES = MAX_UNIX_SOCKET_PATH_BYTES - VSOCK_PORT_SUFFIX_MAX_BYTES;

/** What is wrong with a vsock socket path, or undefined if nothing. */
export function vsockSocketPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'the socket path is empty';
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > MAX_VSOCK_SOCKET_PATH_BYTES) {
    return `socket path is ${bytes} bytes, too long: at most ${MAX_VSOCK_SOCKET_PATH_BYTES} fit a Unix socket address `
      + `once "_<port>" is appended for guest connections; use a shorter one`;
  }
  return undefined;
}

/**
 * What is wrong with a virtio-blk disk id, or undefined if nothing. The id is
 * the 20-byte serial of virtio spec 5.2.6, which names no encoding; Linux
 * shows its raw bytes (drivers/block/virtio_blk.c, serial_show()) and udev
 * builds /dev/disk/by-id/virtio-<serial> from them. Printable ASCII makes
 * bytes and characters the same count, so no character is cut in half at
 * byte 20 and the guest sees exactly what was typed.
 */
export function diskIdProblem(id: string): string | undefined {
  if (!/^[\x20-\x7e]+$/.test(id) || id.length > MAX_DISK_ID_BYTES) {
    return `id "${id}" must be 1 to ${MAX_DISK_ID_BYTES} printable ASCII characters (the virtio-blk serial)`;
  }
  return undefined;
}
