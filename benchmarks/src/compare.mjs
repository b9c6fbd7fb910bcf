// Comparisons of outputs between runs of the benchmarks.

/** ‖a − b‖ / ‖b‖ */
export function relL2(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
