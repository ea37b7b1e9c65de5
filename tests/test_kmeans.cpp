// k-means (cluster/kmeans.h) and document embeddings (cluster/embed.h), torch-free: clearly
// separated groups are recovered, the result is the same bits for a seed whatever the thread
// count, the agreement measures match hand-computed values, and embeddings of token sequences
// from disjoint vocabularies cluster back into their groups.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cluster/embed.h"
#include "common/threads.h"
#include "cluster/kmeans.h"

using namespace lorazip;

namespace {

// A fixed pseudo-random stream (splitmix64), so the test data is the same everywhere.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// `groups` groups of `per` points in `dim` dimensions, centred at 10 x e_g, noise in [-1, 1).
std::vector<double> separated_groups(int groups, int per, int dim, std::vector<int32_t>* labels, uint64_t seed = 5) {
  Rng rng{seed};
  std::vector<double> x;
  // Interleave the groups so that the data order says nothing about them.
  for (int i = 0; i < per; ++i)
    for (int g = 0; g < groups; ++g) {
      for (int j = 0; j < dim; ++j) x.push_back((j == g ? 10.0 : 0.0) + 2 * rng.uniform() - 1);
      labels->push_back(g);
    }
  return x;
}

}  // namespace

TEST(KMeans, RecoversClearlySeparatedGroups) {
  std::vector<int32_t> labels;
  const std::vector<double> x = separated_groups(4, 30, 6, &labels);
  for (uint64_t seed : {1, 2, 3}) {
    KMeansOptions o;
    o.k = 4;
    o.seed = seed;
    KMeansResult r = kmeans(x, 120, 6, o);
    EXPECT_DOUBLE_EQ(adjusted_rand_index(r.assignment, labels), 1.0) << "seed " << seed;
    EXPECT_DOUBLE_EQ(purity(r.assignment, labels), 1.0);
    // Centroids sit near their group's centre: cluster of point g (the first points) is group g.
    for (int g = 0; g < 4; ++g) EXPECT_NEAR(r.centroids[static_cast<size_t>(r.assignment[g] * 6 + g)], 10.0, 0.5);
  }
}

TEST(KMeans, DeterministicForASeedAndIndependentOfThreadCount) {
  // Overlapping data (uniform noise), where the seeding and every sum's order matter.
  Rng rng{42};
  const int64_t n = 500, dim = 7;
  std::vector<double> x(static_cast<size_t>(n * dim));
  for (double& v : x) v = rng.uniform();
  KMeansOptions o;
  o.k = 6;
  o.seed = 9;
  o.threads = 1;
  const KMeansResult a = kmeans(x, n, dim, o);
  for (int threads : {1, 2, 3, 8, 0}) {
    o.threads = threads;
    const KMeansResult b = kmeans(x, n, dim, o);
    EXPECT_EQ(a.assignment, b.assignment) << threads << " threads";
    EXPECT_EQ(a.centroids, b.centroids) << threads << " threads";  // bit for bit
    EXPECT_EQ(a.inertia, b.inertia);
  }
  o.seed = 10;
  const KMeansResult c = kmeans(x, n, dim, o);
  EXPECT_NE(a.centroids, c.centroids) << "the seed does not reach the seeding";
}

TEST(KMeans, AgreementMeasuresMatchHandValues) {
  // Pairs: same-same 1 of 6; expected index 2 x 3 / 6 = 1, maximum (2 + 3) / 2 -> ARI 0.
  EXPECT_NEAR(adjusted_rand_index({0, 0, 1, 1}, {0, 0, 0, 1}), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(adjusted_rand_index({0, 0, 1, 1, 2}, {7, 7, 3, 3, 5}), 1.0);  // same partition, other names
  EXPECT_DOUBLE_EQ(purity({0, 0, 1, 1}, {0, 0, 0, 1}), 0.75);
  // {0,0,0,1,1,1} vs {0,0,1,1,2,2}: index 2, row pairs 6, column pairs 3, all pairs 15, so
  // expected 6 x 3 / 15 = 1.2, maximum 4.5: ARI = (2 - 1.2) / (4.5 - 1.2) = 8/33.
  EXPECT_NEAR(adjusted_rand_index({0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2}), 8.0 / 33.0, 1e-12);
}

TEST(KMeans, RefusesImpossibleRequests) {
  std::vector<double> x{0, 1, 2};
  KMeansOptions o;
  o.k = 4;
  EXPECT_THROW(kmeans(x, 3, 1, o), std::invalid_argument);
  o.k = 2;
  EXPECT_THROW(kmeans(x, 2, 1, o), std::invalid_argument);  // size disagrees
  x[1] = NAN;
  EXPECT_THROW(kmeans(x, 3, 1, o), std::invalid_argument);
}

namespace {

// A small random Llama on the coding engine (tied embeddings), weights from a fixed stream.
struct RandomModel {
  std::vector<std::vector<float>> store;
  engine::TensorMap map;
  engine::Config cfg;
  void add(const std::string& key, std::vector<int64_t> shape, Rng& rng, float scale, float offset = 0) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    store.emplace_back(static_cast<size_t>(n));
    for (float& v : store.back()) v = offset + scale * static_cast<float>(2 * rng.uniform() - 1);
    map[key] = {shape, store.back().data()};
  }
  RandomModel() {
    cfg.vocab_size = 64;
    cfg.hidden_size = 32;
    cfg.intermediate_size = 48;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.head_dim = 8;
    cfg.max_position_embeddings = 64;
    cfg.tie_word_embeddings = true;
    store.reserve(64);
    Rng rng{11};
    const int64_t C = 32, I = 48, HD = 32, KD = 16;
    add("model.embed_tokens.weight", {64, C}, rng, 1.0f);
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {C}, rng, 0.1f, 1.0f);
      add(p + "post_attention_layernorm.weight", {C}, rng, 0.1f, 1.0f);
      add(p + "self_attn.q_proj.weight", {HD, C}, rng, 0.2f);
      add(p + "self_attn.k_proj.weight", {KD, C}, rng, 0.2f);
      add(p + "self_attn.v_proj.weight", {KD, C}, rng, 0.2f);
      add(p + "self_attn.o_proj.weight", {C, HD}, rng, 0.2f);
      add(p + "mlp.gate_proj.weight", {I, C}, rng, 0.2f);
      add(p + "mlp.up_proj.weight", {I, C}, rng, 0.2f);
      add(p + "mlp.down_proj.weight", {C, I}, rng, 0.2f);
    }
    add("model.norm.weight", {C}, rng, 0.1f, 1.0f);
  }
};

}  // namespace

TEST(Embed, DocumentsFromDisjointVocabulariesClusterIntoTheirGroups) {
  RandomModel rm;
  engine::Model model(rm.cfg, rm.map);
  // Three groups of 12 documents; group g draws its tokens from ids [3 + 20 g, 3 + 20 g + 20).
  Rng rng{3};
  std::vector<std::vector<int32_t>> docs;
  std::vector<int32_t> labels;
  for (int i = 0; i < 12; ++i)
    for (int g = 0; g < 3; ++g) {
      std::vector<int32_t> d(static_cast<size_t>(10 + rng.next() % 20));
      for (auto& t : d) t = static_cast<int32_t>(3 + 20 * g + rng.next() % 20);
      docs.push_back(d);
      labels.push_back(g);
    }
  EmbedOptions eo;
  eo.layer = 1;
  std::vector<double> x;
  for (const auto& d : docs) {
    std::vector<double> e = embed_tokens(model, d, 1, eo);
    ASSERT_EQ(e.size(), 32u);
    double norm = 0;
    for (double v : e) norm += v * v;
    EXPECT_NEAR(norm, 1.0, 1e-12);
    x.insert(x.end(), e.begin(), e.end());
  }
  // The same vector on a parallel pass (any thread may embed any document).
  std::vector<double> y(x.size());
  parallel_for(docs.size(), 4, [&](size_t i) {
    std::vector<double> e = embed_tokens(model, docs[i], 1, eo);
    std::copy(e.begin(), e.end(), y.begin() + static_cast<std::ptrdiff_t>(i * 32));
  });
  EXPECT_EQ(x, y);
  KMeansOptions ko;
  ko.k = 3;
  KMeansResult r = kmeans(x, static_cast<int64_t>(docs.size()), 32, ko);
  EXPECT_DOUBLE_EQ(adjusted_rand_index(r.assignment, labels), 1.0);
}

TEST(Embed, RefusesALayerTheModelDoesNotHave) {
  RandomModel rm;
  engine::Model model(rm.cfg, rm.map);
  EmbedOptions eo;
  eo.layer = 3;
  EXPECT_THROW(embed_tokens(model, {5, 6}, 1, eo), std::invalid_argument);
  eo.layer = -1;  // half of 2 blocks
  EXPECT_EQ(resolve_embed_layer(rm.cfg, -1), 1);
  EXPECT_EQ(embed_tokens(model, {}, 1, eo).size(), 32u);  // BOS alone
}
