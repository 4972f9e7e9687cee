// Yama's ptrace_scope as ptrace_may_access() applies it to an attach
// (security/yama/yama_lsm.c): every scope, every relation. This kernel has
// no Yama, so the rule is tested here and not end to end.
#include "trace/yama.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <optional>

namespace vmatrace {
namespace {

using K = YamaVerdict::Kind;

const YamaTracee kDescendant{true, false};
const YamaTracee kNamedUs{false, true};
const YamaTracee kStranger{false, false};
const YamaTracee kUnknownStranger{false, std::nullopt};

TEST(Yama, NoYamaOrScopeZeroIsTheClassicRules) {
  for (std::optional<int> scope : {std::optional<int>{}, std::optional<int>{0}})
    for (const auto& t : {kDescendant, kNamedUs, kStranger, kUnknownStranger})
      for (bool cap : {false, true}) {
        const auto v = yama_judge(scope, t, cap);
        EXPECT_EQ(v.kind, K::kAllowed);
        EXPECT_TRUE(v.why.empty());
      }
}

TEST(Yama, ScopeOneAllowsDescendantsTheNamedAndCapSysPtrace) {
  EXPECT_EQ(yama_judge(1, kDescendant, false).kind, K::kAllowed);
  EXPECT_EQ(yama_judge(1, {true, std::nullopt}, false).kind, K::kAllowed);
  EXPECT_EQ(yama_judge(1, kNamedUs, false).kind, K::kAllowed);
  EXPECT_EQ(yama_judge(1, kStranger, true).kind, K::kAllowed);
  EXPECT_EQ(yama_judge(1, kUnknownStranger, true).kind, K::kAllowed);
}

TEST(Yama, ScopeOneRefusesOthersAndCannotTellAnUnseenPtracer) {
  const auto refused = yama_judge(1, kStranger, false);
  EXPECT_EQ(refused.kind, K::kRefused);
  EXPECT_NE(refused.why.find("kernel.yama.ptrace_scope is 1"), std::string::npos) << refused.why;
  EXPECT_NE(refused.why.find("PR_SET_PTRACER"), std::string::npos) << refused.why;
  // Whether it named us cannot be seen from user space: neither allowed nor refused.
  const auto unknown = yama_judge(1, kUnknownStranger, false);
  EXPECT_EQ(unknown.kind, K::kUnknown);
  EXPECT_FALSE(unknown.allowed());
  EXPECT_FALSE(unknown.refused());
  EXPECT_EQ(unknown.why, refused.why);
}

TEST(Yama, ScopeTwoNeedsCapSysPtraceWhateverTheRelation) {
  for (const auto& t : {kDescendant, kNamedUs, kStranger, kUnknownStranger}) {
    EXPECT_EQ(yama_judge(2, t, true).kind, K::kAllowed);
    const auto v = yama_judge(2, t, false);
    EXPECT_EQ(v.kind, K::kRefused);
    EXPECT_NE(v.why.find("kernel.yama.ptrace_scope is 2: only a tracer holding CAP_SYS_PTRACE"), std::string::npos)
        << v.why;
  }
}

TEST(Yama, ScopeThreeRefusesEveryAttachEvenWithCapSysPtrace) {
  for (const auto& t : {kDescendant, kNamedUs, kStranger, kUnknownStranger})
    for (bool cap : {false, true}) {
      const auto v = yama_judge(3, t, cap);
      EXPECT_EQ(v.kind, K::kRefused);
      EXPECT_NE(v.why.find("kernel.yama.ptrace_scope is 3: no process may ptrace another"), std::string::npos) << v.why;
    }
}

// The reader: this kernel has no Yama (a kernel with it gives its scope).
TEST(Yama, ScopeReaderMatchesTheSysctl) {
  const auto scope = yama_ptrace_scope();
  std::FILE* f = std::fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
  if (!f) {
    EXPECT_FALSE(scope.has_value());
    return;
  }
  int want = -1;
  EXPECT_EQ(std::fscanf(f, "%d", &want), 1);
  std::fclose(f);
  ASSERT_TRUE(scope.has_value());
  EXPECT_EQ(*scope, want);
}

}  // namespace
}  // namespace vmatrace
