// wasmeter guest SDK for JavaScript plugins (built with componentize-js).
//
//   export const { plugin, collect } = exportCollector(MyCollector);
//
// Errors are thrown strings (or Errors): from the constructor they refuse the config,
// from `importState` the state, while handling a line (`lines.forEach`) they become a
// record error of that line.

export * as lines from "./lines.js";
export { StateReader, StateWriter } from "./state.js";
export { exportCollector, exportDelta, exportMetric } from "./world.js";
export { counter, event, field, gauge, label, nowMs, update } from "./values.js";
export { Selection, key } from "./series.js";
