// k-means with k-means++ seeding, deterministic: the same points, k and seed give the same
// clusters and the same centroids, bit for bit, whatever the thread count (only the per-point
// distance work is spread over threads; every sum runs in point order on one thread). Also the
// agreement measures used to compare clusters with hand labels (purity, adjusted Rand index).
// Torch-free.
#pragma once
#include <cstdint>
#include <vector>

namespace lorazip {

struct KMeansOptions {
  int64_t k = 5;           // clusters, 1..number of points
  uint64_t seed = 1;       // seeds the k-means++ draws (splitmix64)
  int64_t max_iters = 100; // Lloyd iterations per restart, >= 1 (stops earlier when no point moves)
  int64_t restarts = 4;    // k-means++ seedings tried; the one with the least inertia is kept, >= 1
  int threads = 0;         // 0 = all cores; does not change the result
};

struct KMeansResult {
  int64_t k = 0, dim = 0;
  std::vector<int32_t> assignment;  // [n] cluster of each point; clusters are numbered by their
                                    // first point (point 0 is in cluster 0)
  std::vector<double> centroids;    // [k, dim] the mean of each cluster's points
  double inertia = 0;               // sum of squared distances to the assigned centroid
  int64_t iterations = 0;           // Lloyd iterations of the kept restart
};

// points: [n, dim] row-major. std::invalid_argument when n < k, k < 1, dim < 1, a size disagrees,
// a value is not finite, or an option is out of range.
KMeansResult kmeans(const std::vector<double>& points, int64_t n, int64_t dim, const KMeansOptions& opt);

// Index of the centroid nearest to x (squared Euclidean distance; ties go to the lower index).
int64_t nearest_centroid(const double* x, const std::vector<double>& centroids, int64_t k, int64_t dim);

// Fraction of points whose cluster's most common label is their own label, in [0, 1].
double purity(const std::vector<int32_t>& clusters, const std::vector<int32_t>& labels);
// Adjusted Rand index (Hubert and Arabie 1985): 1 for identical partitions, about 0 for random ones.
double adjusted_rand_index(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace lorazip
