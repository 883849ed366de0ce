#include "dataplane/deadlines.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace gantry::dataplane {
namespace {

using Clock = Deadlines::Clock;
using std::chrono::milliseconds;

// An entry that notes when it is told, and runs `then` (which may file or destroy entries).
struct Probe : DeadlineEntry {
  explicit Probe(int id, std::vector<int>* log) : id(id), log(log) {}
  ~Probe() = default;
  void expired() override {
    ++told;
    if (log != nullptr) {
      log->push_back(id);
    }
    if (then) {
      then();
    }
  }
  int id;
  std::vector<int>* log;
  int told = 0;
  std::function<void()> then;
};

TEST(DeadlinesTest, EntriesAreToldInTimeOrderAndNotBeforeTheirTime) {
  boost::asio::io_context ctx;
  Deadlines d(ctx);
  const Clock::time_point t0{};
  std::vector<int> log;
  Probe a(1, &log), b(2, &log), c(3, &log);
  d.file(b, t0 + milliseconds(20));
  d.file(a, t0 + milliseconds(10));
  d.file(c, t0 + milliseconds(30));
  EXPECT_EQ(d.size(), 3u);
  d.expire(t0 + milliseconds(9));
  EXPECT_TRUE(log.empty());
  d.expire(t0 + milliseconds(20)); // "at or before": b's time is now
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
  EXPECT_FALSE(a.filed());
  EXPECT_TRUE(c.filed());
  d.expire(t0 + milliseconds(100));
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(d.size(), 0u);
}

TEST(DeadlinesTest, FilingAgainMovesAnEntryEitherWayAndRemovingOrDestroyingTakesItOut) {
  boost::asio::io_context ctx;
  Deadlines d(ctx);
  const Clock::time_point t0{};
  std::vector<int> log;
  Probe a(1, &log), b(2, &log);
  d.file(a, t0 + milliseconds(10));
  d.file(b, t0 + milliseconds(20));
  d.file(a, t0 + milliseconds(30)); // later
  d.file(b, t0 + milliseconds(5));  // sooner
  EXPECT_EQ(a.filedFor(), t0 + milliseconds(30));
  d.expire(t0 + milliseconds(10));
  EXPECT_EQ(log, (std::vector<int>{2}));
  d.remove(a);
  EXPECT_FALSE(a.filed());
  d.remove(a); // twice is harmless
  {
    Probe gone(3, &log);
    d.file(gone, t0 + milliseconds(40));
    EXPECT_EQ(d.size(), 1u);
  }
  EXPECT_EQ(d.size(), 0u);
  d.expire(t0 + milliseconds(1000));
  EXPECT_EQ(log, (std::vector<int>{2}));
  EXPECT_EQ(a.told, 0);
}

TEST(DeadlinesTest, AnEntryToldMayDestroyOthersAndFileItselfAgain) {
  boost::asio::io_context ctx;
  Deadlines d(ctx);
  const Clock::time_point t0{};
  std::vector<int> log;
  Probe first(1, &log);
  auto victim = std::make_unique<Probe>(2, &log); // due in the same pass, destroyed before its turn
  Probe later(3, &log);
  d.file(first, t0 + milliseconds(1));
  d.file(*victim, t0 + milliseconds(2));
  d.file(later, t0 + milliseconds(50));
  first.then = [&] {
    victim.reset();
    if (first.told == 1) {
      d.file(first, t0 + milliseconds(60)); // as a connection whose deadline moved on does
    }
  };
  d.expire(t0 + milliseconds(10));
  EXPECT_EQ(log, (std::vector<int>{1}));
  EXPECT_TRUE(first.filed());
  EXPECT_EQ(d.size(), 2u);
  d.expire(t0 + milliseconds(100));
  EXPECT_EQ(log, (std::vector<int>{1, 3, 1}));
}

// Many entries filed, moved, removed and told in random order, against a plain sorted model.
TEST(DeadlinesTest, AgreesWithASortedModelUnderRandomOperations) {
  boost::asio::io_context ctx;
  Deadlines d(ctx);
  const Clock::time_point t0{};
  std::mt19937 rng(12345);
  constexpr int kEntries = 300;
  std::vector<int> log;
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < kEntries; ++i) {
    probes.push_back(std::make_unique<Probe>(i, &log));
  }
  std::map<int, long> model; // id -> filed time (ms)
  long now = 0;
  for (int step = 0; step < 20000; ++step) {
    int id = static_cast<int>(rng() % kEntries);
    switch (rng() % 4) {
    case 0:
    case 1: {
      long at = now + static_cast<long>(rng() % 1000);
      d.file(*probes[id], t0 + milliseconds(at));
      model[id] = at;
      break;
    }
    case 2:
      d.remove(*probes[id]);
      model.erase(id);
      break;
    default: {
      now += static_cast<long>(rng() % 50);
      std::vector<std::pair<long, int>> due;
      for (auto [pid, at] : model) {
        if (at <= now) {
          due.emplace_back(at, pid);
        }
      }
      std::sort(due.begin(), due.end());
      log.clear();
      d.expire(t0 + milliseconds(now));
      ASSERT_EQ(log.size(), due.size()) << "step " << step;
      for (size_t i = 0; i < due.size(); ++i) {
        // Equal times may come in any order; the times must not go backwards.
        EXPECT_EQ(model.at(log[i]), due[i].first) << "step " << step;
        model.erase(log[i]);
      }
      break;
    }
    }
    ASSERT_EQ(d.size(), model.size());
  }
}

// The timer: a real io_context tells each entry once its time has come, the sooner one first,
// also when it was filed sooner after the timer had been armed for a later time.
TEST(DeadlinesTest, TheTimerTellsEntriesOnTheEventLoopOnTime) {
  boost::asio::io_context ctx;
  Deadlines d(ctx);
  std::vector<int> log;
  std::vector<Clock::time_point> when;
  Probe slow(1, &log), quick(2, &log);
  slow.then = [&] { when.push_back(Clock::now()); };
  quick.then = [&] { when.push_back(Clock::now()); };
  const auto start = Clock::now();
  d.file(slow, start + milliseconds(80));
  d.file(quick, start + milliseconds(400));
  d.file(quick, start + milliseconds(30)); // sooner than the timer is armed for
  ctx.run_for(std::chrono::seconds(5));    // returns when nothing is left to wait for
  ASSERT_EQ(log, (std::vector<int>{2, 1}));
  EXPECT_GE(when[0], start + milliseconds(30));
  EXPECT_GE(when[1], start + milliseconds(80));
  EXPECT_EQ(d.size(), 0u);
}

TEST(DeadlinesTest, EntriesLeftWhenTheDeadlinesGoAwayAreLetGo) {
  std::vector<int> log;
  Probe a(1, &log);
  {
    boost::asio::io_context ctx;
    Deadlines d(ctx);
    d.file(a, Clock::now() + std::chrono::hours(1));
  }
  EXPECT_FALSE(a.filed()); // and its destructor touches nothing
  EXPECT_TRUE(log.empty());
}

} // namespace
} // namespace gantry::dataplane

TEST(CoarseClockTest, LagsTheSteadyClockByLessThanATickAndNeverLeadsIt) {
  // coarseNow() read between two steady_clock readings: at most the second, and not behind the
  // first by more than a tick (and another tick of slack for a late timekeeping update).
  using gantry::dataplane::coarseNow;
  using gantry::dataplane::coarseTick;
  const auto tick = coarseTick();
  ASSERT_GT(tick.count(), 0);
  ASSERT_LE(tick, std::chrono::milliseconds(10));
  for (int i = 0; i < 100000; ++i) {
    const auto before = std::chrono::steady_clock::now();
    const auto coarse = coarseNow();
    const auto after = std::chrono::steady_clock::now();
    ASSERT_LE(coarse, after);
    ASSERT_GE(coarse, before - 2 * tick);
  }
}
