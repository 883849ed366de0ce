#pragma once
// The deadlines of one worker's connections and HTTP/2 streams behind one Asio timer. A timer
// object per connection costs, for every HTTP/2 stream, a service lookup under a mutex, a
// heap insertion and removal in Asio's timer queue under another, and a wait handler; here it
// is a binary min-heap of plain pointers, touched only by the worker's thread.
//
// The owner of an entry keeps its real deadline itself and may push it later without telling
// anyone; the heap keeps the time the entry was filed for. When that time comes, the entry's
// expired() looks at its real deadline and either acts or files itself again — so a connection
// that serves request after request moves nothing in the heap per request.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <vector>

namespace gantry::dataplane {

// The time of the kernel's last clock tick, on steady_clock's scale (both are CLOCK_MONOTONIC):
// behind steady_clock::now() by less than one tick (4 ms here), and far cheaper to read (5 ns
// against 23 ns in this VM; the request path takes the time six times per request). For idle
// times and for deadlines, which add coarseTick() so that they are never early.
inline std::chrono::steady_clock::time_point coarseNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}
// The coarse clock's resolution (the kernel's tick).
std::chrono::nanoseconds coarseTick();

class Deadlines;

// Something that is told when a time has passed: derive from it. Destroying it removes it.
class DeadlineEntry {
public:
  using Clock = std::chrono::steady_clock;
  DeadlineEntry() = default;
  DeadlineEntry(const DeadlineEntry&) = delete;
  DeadlineEntry& operator=(const DeadlineEntry&) = delete;

  bool filed() const { return index_ != kNone; }
  Clock::time_point filedFor() const { return at_; } // meaningful while filed()

protected:
  ~DeadlineEntry();

private:
  friend class Deadlines;
  // Called on the worker's thread at or after filedFor(), once the entry is out of the heap; it
  // may file itself (or any other entry) again.
  virtual void expired() = 0;

  static constexpr size_t kNone = SIZE_MAX;
  Deadlines* owner_ = nullptr;
  size_t index_ = kNone;
  Clock::time_point at_{};
};

class Deadlines {
public:
  using Clock = std::chrono::steady_clock;
  explicit Deadlines(boost::asio::io_context& ctx) : timer_(ctx) {}
  ~Deadlines(); // entries still filed are let go (they are not told)
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Files `e` for `at`, earlier or later than it was filed for before, if it was.
  void file(DeadlineEntry& e, Clock::time_point at);
  void remove(DeadlineEntry& e);
  size_t size() const { return heap_.size(); }
  // Tells every entry whose time is at or before `now`, earliest first (the timer calls it;
  // tests call it directly).
  void expire(Clock::time_point now);

private:
  void removeAt(size_t i);
  void place(size_t i, DeadlineEntry* e) {
    heap_[i] = e;
    e->index_ = i;
  }
  void siftUp(size_t i);
  void siftDown(size_t i);
  // Makes the timer fire at the earliest filed time, if it would not fire by then anyway.
  void rearm();

  std::vector<DeadlineEntry*> heap_;
  boost::asio::steady_timer timer_;
  Clock::time_point armedFor_ = Clock::time_point::max();
  uint64_t generation_ = 0; // a wait from before the last re-arm is ignored when it completes
};

} // namespace gantry::dataplane
