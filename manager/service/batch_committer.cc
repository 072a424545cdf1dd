#include "manager/service/batch_committer.h"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

namespace qos::manager {

BatchCommitter::BatchCommitter(ReservationStore& store)
    : store_(store), ready_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (ready_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  thread_ = std::thread([this] { run(); });
}

BatchCommitter::~BatchCommitter() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  close(ready_fd_);
}

void BatchCommitter::submit(ReservationStore::Changes changes) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    todo_ = std::move(changes);
  }
  busy_ = true;
  wake_.notify_one();
}

std::optional<BatchCommitter::Outcome> BatchCommitter::collect() {
  std::optional<Outcome> outcome;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    outcome.swap(outcome_);
  }
  if (outcome) {
    clearReady();
    busy_ = false;
  }
  return outcome;
}

BatchCommitter::Outcome BatchCommitter::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return outcome_.has_value(); });
  Outcome outcome = std::move(*outcome_);
  outcome_.reset();
  lock.unlock();
  clearReady();
  busy_ = false;
  return outcome;
}

void BatchCommitter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    // Stop only between batches: a submitted batch is always written.
    wake_.wait(lock, [this] { return stop_ || todo_.has_value(); });
    if (!todo_) {
      return;
    }
    const ReservationStore::Changes changes = std::move(*todo_);
    todo_.reset();
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    Result<void> result = store_.commit(changes);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    lock.lock();
    outcome_ = Outcome{std::move(result), changes.size(), seconds};
    done_.notify_one();
    signalReady();
  }
}

void BatchCommitter::signalReady() {
  const uint64_t one = 1;
  // Cannot fail short of a bad descriptor: the counter never nears its limit.
  [[maybe_unused]] const ssize_t n = write(ready_fd_, &one, sizeof(one));
}

void BatchCommitter::clearReady() {
  uint64_t count = 0;
  // EAGAIN when the counter is already zero; that is fine.
  [[maybe_unused]] const ssize_t n = read(ready_fd_, &count, sizeof(count));
}

}  // namespace qos::manager
