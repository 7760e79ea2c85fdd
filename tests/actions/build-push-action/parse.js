// Parse build-push-action's list inputs with the real Util.getList of @docker/actions-toolkit.
// stdin: {"name": [text, opts], ...}; stdout: {"name": [items], ...}.
const {Util} = require(process.argv[2] + '/@docker/actions-toolkit/lib/util');
let input = '';
process.stdin.on('data', chunk => (input += chunk));
process.stdin.on('end', () => {
  const out = {};
  for (const [name, [text, opts]] of Object.entries(JSON.parse(input))) {
    out[name] = Util.getList(text, opts);
  }
  process.stdout.write(JSON.stringify(out));
});
