/**
 * Orders experts so that similar ones sit together in the cosine heatmap: average-linkage
 * agglomerative clustering on the distance 1 - cosine, leaves read off the tree left to right.
 * O(E^3) in the worst case: 2 million steps at E = 128, a few ms.
 */
export function clusterOrder(cos: readonly (readonly number[])[]): number[] {
  const n = cos.length;
  type Cluster = { members: number[]; order: number[] };
  let clusters: Cluster[] = Array.from({ length: n }, (_, i) => ({ members: [i], order: [i] }));
  const dist = (a: Cluster, b: Cluster) => {
    let s = 0;
    for (const i of a.members) for (const j of b.members) s += 1 - (cos[i]?.[j] ?? 0);
    return s / (a.members.length * b.members.length);
  };
  while (clusters.length > 1) {
    let best = [0, 1];
    let bestD = Infinity;
    for (let a = 0; a < clusters.length; a++) {
      for (let b = a + 1; b < clusters.length; b++) {
        const d = dist(clusters[a]!, clusters[b]!);
        if (d < bestD) {
          bestD = d;
          best = [a, b];
        }
      }
    }
    const [a, b] = best as [number, number];
    const merged = { members: [...clusters[a]!.members, ...clusters[b]!.members], order: [...clusters[a]!.order, ...clusters[b]!.order] };
    clusters = clusters.filter((_, k) => k !== a && k !== b);
    clusters.push(merged);
  }
  return clusters[0]?.order ?? [];
}
