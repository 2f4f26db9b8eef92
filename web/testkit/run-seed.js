// node web/testkit/run-seed.js SEED [lineIndex] [growth] [steps]: one randomised run, for debugging.
import { randomRun } from "./random.js";
const [seed, lineIndex, growth, steps] = process.argv.slice(2);
randomRun(Number(seed), { lineIndex: lineIndex === "true", growth: Number(growth || 1), steps: Number(steps || 1500) });
console.log("ok");
