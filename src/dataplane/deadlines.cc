#include "dataplane/deadlines.h"

namespace gantry::dataplane {

std::chrono::nanoseconds coarseTick() {
  static const std::chrono::nanoseconds tick = [] {
    timespec res{};
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
  }();
  return tick;
}

DeadlineEntry::~DeadlineEntry() {
  if (owner_ != nullptr && index_ != kNone) {
    owner_->remove(*this);
  }
}

Deadlines::~Deadlines() {
  for (DeadlineEntry* e : heap_) {
    e->owner_ = nullptr;
    e->index_ = DeadlineEntry::kNone;
  }
}

void Deadlines::file(DeadlineEntry& e, Clock::time_point at) {
  e.owner_ = this;
  if (e.index_ == DeadlineEntry::kNone) {
    e.at_ = at;
    heap_.push_back(&e);
    e.index_ = heap_.size() - 1;
    siftUp(e.index_);
  } else {
    bool sooner = at < e.at_;
    e.at_ = at;
    if (sooner) {
      siftUp(e.index_);
    } else {
      siftDown(e.index_);
    }
  }
  if (at < armedFor_) {
    rearm();
  }
}

void Deadlines::remove(DeadlineEntry& e) {
  if (e.owner_ == this && e.index_ != DeadlineEntry::kNone) {
    removeAt(e.index_);
  }
  // The timer may now fire with nothing due: expire() finds that and re-arms for the new head.
}

void Deadlines::removeAt(size_t i) {
  DeadlineEntry* gone = heap_[i];
  DeadlineEntry* last = heap_.back();
  heap_.pop_back();
  gone->index_ = DeadlineEntry::kNone;
  if (gone == last) {
    return;
  }
  place(i, last);
  if (i > 0 && last->at_ < heap_[(i - 1) / 2]->at_) {
    siftUp(i);
  } else {
    siftDown(i);
  }
}

void Deadlines::siftUp(size_t i) {
  DeadlineEntry* e = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!(e->at_ < heap_[parent]->at_)) {
      break;
    }
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void Deadlines::siftDown(size_t i) {
  DeadlineEntry* e = heap_[i];
  size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) {
      break;
    }
    if (child + 1 < n && heap_[child + 1]->at_ < heap_[child]->at_) {
      ++child;
    }
    if (!(heap_[child]->at_ < e->at_)) {
      break;
    }
    place(i, heap_[child]);
    i = child;
  }
  place(i, e);
}

void Deadlines::expire(Clock::time_point now) {
  // Each turn takes the head afresh: expired() may file, remove or destroy any entry.
  while (!heap_.empty() && heap_.front()->at_ <= now) {
    DeadlineEntry* e = heap_.front();
    removeAt(0);
    e->expired();
  }
}

void Deadlines::rearm() {
  if (heap_.empty()) {
    return;
  }
  armedFor_ = heap_.front()->at_;
  uint64_t generation = ++generation_;
  timer_.expires_at(armedFor_); // cancels the wait for a later time, if any
  timer_.async_wait([this, generation](const boost::system::error_code& ec) {
    // Aborted: re-armed (or the worker is going away, and `this` with it). A wait that had
    // already completed when it was re-armed still comes here: the generation tells.
    if (ec || generation != generation_) {
      return;
    }
    armedFor_ = Clock::time_point::max();
    expire(Clock::now());
    if (armedFor_ == Clock::time_point::max()) { // (an entry filed by expired() may have re-armed)
      rearm();
    }
  });
}

} // namespace gantry::dataplane
