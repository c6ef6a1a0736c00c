// Sizes in bytes, as the kernel's documentation and Cloud Hypervisor's
// options count them (powers of 1024). Every layer uses them, so they live
// at the top of src/ and depend on nothing.
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
