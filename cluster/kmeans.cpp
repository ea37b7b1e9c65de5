// k-means++ seeding and Lloyd iterations in double precision, in a fixed order (see kmeans.h).
#include "cluster/kmeans.h"
#include "common/threads.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>


namespace lorazip {
namespace {

// splitmix64: a tiny generator whose output is fixed by its definition on every platform (the
// standard library's distributions are not).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

double sq_dist(const double* a, const double* b, int64_t dim) {
  double s = 0;
  for (int64_t j = 0; j < dim; ++j) {
    const double t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

// k-means++: the first centre uniformly, each next one with probability proportional to the
// squared distance to the nearest centre chosen so far.
std::vector<double> seed_plus_plus(const std::vector<double>& x, int64_t n, int64_t dim, int64_t k, SplitMix64& rng,
                                   int threads) {
  std::vector<double> c(static_cast<size_t>(k * dim));
  auto take = [&](int64_t ci, int64_t point) {
    for (int64_t j = 0; j < dim; ++j) c[ci * dim + j] = x[point * dim + j];
  };
  take(0, static_cast<int64_t>(rng.uniform() * static_cast<double>(n)));
  std::vector<double> d2(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  for (int64_t ci = 1; ci < k; ++ci) {
    parallel_for(static_cast<size_t>(n), threads, [&](size_t i) {
      d2[i] = std::min(d2[i], sq_dist(&x[i * dim], &c[(ci - 1) * dim], dim));
    });
    double total = 0;
    for (double v : d2) total += v;
    int64_t pick = n - 1;
    if (total > 0) {
      const double r = rng.uniform() * total;
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) {
        acc += d2[static_cast<size_t>(i)];
        if (acc > r && d2[static_cast<size_t>(i)] > 0) {
          pick = i;
          break;
        }
      }
    } else {  // every point sits on a centre already: take the next point in order
      pick = ci % n;
    }
    take(ci, pick);
  }
  return c;
}

KMeansResult lloyd(const std::vector<double>& x, int64_t n, int64_t dim, int64_t k, std::vector<double> c,
                   const KMeansOptions& opt) {
  KMeansResult r;
  r.k = k;
  r.dim = dim;
  r.assignment.assign(static_cast<size_t>(n), -1);
  std::vector<double> dist(static_cast<size_t>(n));
  for (int64_t it = 0; it < opt.max_iters; ++it) {
    bool moved = false;
    std::vector<int32_t> next(static_cast<size_t>(n));
    parallel_for(static_cast<size_t>(n), opt.threads, [&](size_t i) {
      const int64_t a = nearest_centroid(&x[i * dim], c, k, dim);
      next[i] = static_cast<int32_t>(a);
      dist[i] = sq_dist(&x[i * dim], &c[a * dim], dim);
    });
    for (int64_t i = 0; i < n; ++i) moved |= next[static_cast<size_t>(i)] != r.assignment[static_cast<size_t>(i)];
    r.assignment = std::move(next);
    r.iterations = it + 1;
    if (!moved && it > 0) break;
    // Means in point order.
    std::vector<double> sum(static_cast<size_t>(k * dim), 0.0);
    std::vector<int64_t> count(static_cast<size_t>(k), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = r.assignment[static_cast<size_t>(i)];
      ++count[static_cast<size_t>(a)];
      for (int64_t j = 0; j < dim; ++j) sum[a * dim + j] += x[i * dim + j];
    }
    std::vector<bool> taken(static_cast<size_t>(n), false);
    for (int64_t a = 0; a < k; ++a) {
      if (count[static_cast<size_t>(a)] > 0) {
        for (int64_t j = 0; j < dim; ++j) c[a * dim + j] = sum[a * dim + j] / static_cast<double>(count[static_cast<size_t>(a)]);
        continue;
      }
      // An empty cluster restarts at the point farthest from its centre (the lowest index on ties).
      int64_t far = 0;
      double best = -1;
      for (int64_t i = 0; i < n; ++i)
        if (!taken[static_cast<size_t>(i)] && dist[static_cast<size_t>(i)] > best) best = dist[static_cast<size_t>(i)], far = i;
      taken[static_cast<size_t>(far)] = true;
      dist[static_cast<size_t>(far)] = 0;
      for (int64_t j = 0; j < dim; ++j) c[a * dim + j] = x[far * dim + j];
    }
  }
  // Final assignment against the final centres, then the inertia in point order.
  parallel_for(static_cast<size_t>(n), opt.threads, [&](size_t i) {
    const int64_t a = nearest_centroid(&x[i * dim], c, k, dim);
    r.assignment[i] = static_cast<int32_t>(a);
    dist[i] = sq_dist(&x[i * dim], &c[a * dim], dim);
  });
  r.inertia = 0;
  for (double v : dist) r.inertia += v;
  r.centroids = std::move(c);
  return r;
}

// Renumbers clusters by their first point, so that equal partitions get equal numbers.
void canonical_order(KMeansResult& r) {
  std::vector<int32_t> map(static_cast<size_t>(r.k), -1);
  int32_t next = 0;
  for (int32_t& a : r.assignment) {
    if (map[static_cast<size_t>(a)] < 0) map[static_cast<size_t>(a)] = next++;
  }
  for (int64_t a = 0; a < r.k; ++a)  // clusters without points (possible only with duplicate points) go last
    if (map[static_cast<size_t>(a)] < 0) map[static_cast<size_t>(a)] = next++;
  std::vector<double> c(r.centroids.size());
  for (int64_t a = 0; a < r.k; ++a)
    for (int64_t j = 0; j < r.dim; ++j) c[map[static_cast<size_t>(a)] * r.dim + j] = r.centroids[a * r.dim + j];
  r.centroids = std::move(c);
  for (int32_t& a : r.assignment) a = map[static_cast<size_t>(a)];
}

}  // namespace

int64_t nearest_centroid(const double* x, const std::vector<double>& centroids, int64_t k, int64_t dim) {
  int64_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int64_t a = 0; a < k; ++a) {
    const double d = sq_dist(x, &centroids[a * dim], dim);
    if (d < best_d) best_d = d, best = a;
  }
  return best;
}

KMeansResult kmeans(const std::vector<double>& points, int64_t n, int64_t dim, const KMeansOptions& opt) {
  if (opt.k < 1) throw std::invalid_argument("k-means: k must be >= 1, got " + std::to_string(opt.k));
  if (dim < 1) throw std::invalid_argument("k-means: points need at least one dimension");
  if (n < opt.k)
    throw std::invalid_argument("k-means: " + std::to_string(n) + " points cannot make " + std::to_string(opt.k) +
                                " clusters (lower k or add documents)");
  if (points.size() != static_cast<size_t>(n * dim))
    throw std::invalid_argument("k-means: " + std::to_string(points.size()) + " values are not " + std::to_string(n) + " points of " +
                                std::to_string(dim));
  if (opt.max_iters < 1) throw std::invalid_argument("k-means: max_iters must be >= 1");
  if (opt.restarts < 1) throw std::invalid_argument("k-means: restarts must be >= 1");
  for (size_t i = 0; i < points.size(); ++i)
    if (!std::isfinite(points[i]))
      throw std::invalid_argument("k-means: point " + std::to_string(i / dim) + " has a value that is not finite");
  KMeansResult best;
  for (int64_t t = 0; t < opt.restarts; ++t) {
    SplitMix64 rng{opt.seed * 0x100000001B3ull + static_cast<uint64_t>(t)};
    KMeansResult r = lloyd(points, n, dim, opt.k, seed_plus_plus(points, n, dim, opt.k, rng, opt.threads), opt);
    if (t == 0 || r.inertia < best.inertia) best = std::move(r);
  }
  canonical_order(best);
  return best;
}

double purity(const std::vector<int32_t>& clusters, const std::vector<int32_t>& labels) {
  if (clusters.size() != labels.size()) throw std::invalid_argument("purity: the two labelings differ in length");
  if (clusters.empty()) return 0;
  std::map<int32_t, std::map<int32_t, int64_t>> table;
  for (size_t i = 0; i < clusters.size(); ++i) ++table[clusters[i]][labels[i]];
  int64_t hit = 0;
  for (const auto& [c, row] : table) {
    int64_t most = 0;
    for (const auto& [l, n] : row) most = std::max(most, n);
    hit += most;
  }
  return static_cast<double>(hit) / static_cast<double>(clusters.size());
}

double adjusted_rand_index(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("adjusted Rand index: the two labelings differ in length");
  auto pairs = [](double x) { return x * (x - 1) / 2; };
  std::map<std::pair<int32_t, int32_t>, int64_t> both;
  std::map<int32_t, int64_t> ra, rb;
  for (size_t i = 0; i < a.size(); ++i) ++both[{a[i], b[i]}], ++ra[a[i]], ++rb[b[i]];
  double index = 0, sa = 0, sb = 0;
  for (const auto& [key, v] : both) index += pairs(static_cast<double>(v));
  for (const auto& [key, v] : ra) sa += pairs(static_cast<double>(v));
  for (const auto& [key, v] : rb) sb += pairs(static_cast<double>(v));
  const double total = pairs(static_cast<double>(a.size()));
  if (total <= 0) return 1;
  const double expected = sa * sb / total, most = (sa + sb) / 2;
  if (most == expected) return 1;  // both partitions trivial (one cluster, or all singletons)
  return (index - expected) / (most - expected);
}

}  // namespace lorazip
