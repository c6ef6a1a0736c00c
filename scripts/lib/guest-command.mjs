// A shell script as one word of a guest's command line (after ` -- `): the
// kernel gives init at most 32 arguments and strips double quotes, so the
// script travels base64-encoded and the guest's shell decodes and runs it.
export function initCommand(script) {
  return `echo ${Buffer.from(script).toString('base64')}|base64 -d>/tmp/script;sh /tmp/script`;
}
