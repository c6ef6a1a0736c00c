// The /dev/kvm system fd: the entry point to KVM. From it we check the API
// version and capabilities, learn the size of the per-vCPU kvm_run mapping,
// ask which CPUID features KVM can offer, and create VMs.
// Reference: Documentation/virt/kvm/api.rst, section 4 ("API description").

import { ConfigError } from '../config/types.js';
import { KVM } from './ioctls.js';
import { O_CLOEXEC, O_RDWR, closeFd, ioctlInt, libc, lastErrno } from '../sys/libc.js';
import { CpuidEntry, decodeCpuid2, encodeCpuid2 } from './structs/cpu-state.js';
import { Errno, SystemCallError } from '../sys/system-error.js';
import { VmFd } from './vm-fd.js';

/** The only KVM API version there has ever been (api.rst 4.1). */
export const KVM_API_VERSION = 12;

/** /dev/kvm is missing, not accessible, or not a KVM we can use. */
export class KvmUnavailableError extends ConfigError {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'KvmUnavailableError';
  }
}

export class Kvm {
  private fdOrClosed: number;

  private constructor(fd: number) {
    this.fdOrClosed = fd;
  }

  /** Opens /dev/kvm (or `path`) and checks the API version. */
  static open(path = '/dev/kvm'): Kvm {
    const fd = libc.open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
      const errno = lastErrno();
      const cause = new SystemCallError(`open ${path}`, errno);
      if (errno === Errno.ENOENT) {
        throw new KvmUnavailableError(
          `${path} not found: this host has no KVM (load kvm_intel/kvm_amd, or use the sandbox: npm run sandbox)`, cause);
      }
      if (errno === Errno.EACCES || errno === Errno.EPERM) {
        throw new KvmUnavailableError(`no permission to open ${path}: add yourself to the kvm group`, cause);
      }
      throw new KvmUnavailableError(`cannot open ${path}: ${cause.message}`, cause);
    }
    const kvm = new Kvm(fd);
    const version = kvm.apiVersion();
    if (version !== KVM_API_VERSION) {
      kvm.close();
      throw new KvmUnavailableError(`${path} speaks KVM API version ${version}, tsvmm needs ${KVM_API_VERSION}`);
    }
    return kvm;
  }

  get fd(): number {
    if (this.fdOrClosed < 0) throw new Error('the /dev/kvm fd is closed');
    return this.fdOrClosed;
  }

  apiVersion(): number {
    return ioctlInt(this.fd, KVM.GET_API_VERSION, 0, 'KVM_GET_API_VERSION');
  }

  /** 0 when `capability` (a KvmCap number) is unsupported; often 1, sometimes a limit. */
  checkExtension(capability: number): number {
    return ioctlInt(this.fd, KVM.CHECK_EXTENSION, capability, 'KVM_CHECK_EXTENSION');
  }

  /** Bytes to mmap from each vCPU fd: struct kvm_run plus the PIO data page and more. */
  vcpuMmapSize(): number {
    return ioctlInt(this.fd, KVM.GET_VCPU_MMAP_SIZE, 0, 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** The CPUID leaves KVM can present to a guest; the starting point of a vCPU's CPUID. */
  supportedCpuid(): CpuidEntry[] {
    // KVM fails with E2BIG when the buffer is too small; grow and retry.
    for (let capacity = 128; ; capacity *= 2) {
      const buffer = encodeCpuid2([], capacity);
      const result = libc.ioctlPtr(this.fd, KVM.GET_SUPPORTED_CPUID, buffer);
      if (result >= 0) return decodeCpuid2(buffer);
      const errno = lastErrno();
      if (errno !== Errno.E2BIG || capacity >= 4096) throw new SystemCallError('KVM_GET_SUPPORTED_CPUID', errno);
    }
  }

  createVm(): VmFd {
    const vmFd = ioctlInt(this.fd, KVM.CREATE_VM, 0, 'KVM_CREATE_VM');
    return new VmFd(vmFd, this.vcpuMmapSize());
  }

  /** Closes /dev/kvm. VMs created from it stay usable (each holds its own reference). */
  close(): void {
    if (this.fdOrClosed < 0) return;
    const fd = this.fdOrClosed;
    this.fdOrClosed = -1;
    closeFd(fd);
  }
}
