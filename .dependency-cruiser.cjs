// The layering rule of src/ (issue: one shape for every concept): each layer
// may import from the layers below it, never from one above, so that the
// lower layers can be read, tested and reused without the VM around them.
// Lowest first; docs/architecture.md, "Layers", says what each holds.
const LAYERS = [
  ['base', '^src/(units|hex|log|trace)\\.ts$'],
  ['sys', '^src/sys/'],
  ['config', '^src/config(/|\\.ts$)'],
  ['kvm', '^src/kvm/'],
  ['memory', '^src/memory/'],
  ['bus', '^src/bus/'],
  ['vcpu', '^src/vcpu/'],
  ['devices', '^src/devices/'],
  ['arch', '^src/arch/'],
  ['vsock-host', '^src/vsock-host/'],
  ['exec', '^src/exec/'],
  ['vm', '^src/(vm/|vm\\.ts$)'],
  ['entry points', '^src/(cli|index)\\.ts$'],
];

module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map(([name, path], index) => ({
      name: `${name}-imports-no-higher-layer`,
      comment: `${name} may import only from the layers below it: ${LAYERS.slice(0, index).map(([n]) => n).join(', ') || 'none'}`,
      severity: 'error',
      from: { path },
      to: { path: LAYERS.slice(index + 1).map(([, p]) => p) },
    })),
    {
      name: 'every-file-in-a-layer',
      comment: 'a file in src/ that no layer claims escapes the rule: give it a layer',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map(([, p]) => p) },
      to: {},
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other at run time (type-only imports are erased and do not count)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};
