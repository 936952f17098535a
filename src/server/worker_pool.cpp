#include "src/server/worker_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "src/server/api_error.h"

extern char** environ;

namespace qrun::server {

using nlohmann::json;

WorkerPool::WorkerPool(std::vector<std::string> worker_argv, int count, int max_queue)
    : argv_(std::move(worker_argv)), max_queue_(max_queue), workers_(static_cast<size_t>(count)) {
  for (Worker& w : workers_) spawn(w);
  counters_.workers = count;
  watcher_ = std::thread([this] { watch_idle_workers(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  watcher_.join();
  for (Worker& w : workers_) {
    w.channel.reset();  // EOF: the worker's loop ends
    if (w.pid > 0) {
      ::kill(w.pid, SIGTERM);
      ::waitpid(w.pid, nullptr, 0);
    }
  }
}

void WorkerPool::spawn(Worker& w) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw Error("socketpair failed: " + std::string(std::strerror(errno)));
  int child = fds[1];
  if (child == 3) {  // dup2 onto itself would keep close-on-exec
    child = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
    ::close(fds[1]);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child, 3);
  std::vector<char*> argv;
  for (std::string& a : argv_) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The front blocks SIGINT/SIGTERM for its signal thread; a worker takes them as usual.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(child);
  if (rc != 0) {
    ::close(fds[0]);
    throw Error(argv_[0], -1, "cannot start a worker: " + std::string(std::strerror(rc)));
  }
  w.pid = pid;
  w.process = ++spawned_;
  w.spawned_at = std::chrono::steady_clock::now();
  w.channel = std::make_unique<LineChannel>(fds[0]);
  w.cache.clear();
  w.busy = false;
}

// A worker that keeps dying before it finishes a request (say, its model file broke)
// is respawned after 0.25, 0.5, ... up to 8 s, not in a loop that burns a core.
void WorkerPool::restart(Worker& w) {
  if (w.pid > 0) {
    ::kill(w.pid, SIGKILL);
    ::waitpid(w.pid, nullptr, 0);
  }
  w.pid = -1;
  w.channel.reset();
  w.cache.clear();
  ++counters_.restarts;
  ++w.failures;
  const int doublings = std::min(w.failures - 2, 5);
  w.respawn_at = std::chrono::steady_clock::now() +
                 (doublings < 0 ? std::chrono::milliseconds(0) : std::chrono::milliseconds(250 << doublings));
  respawn_due(std::chrono::steady_clock::now());
}

void WorkerPool::respawn_due(std::chrono::steady_clock::time_point now) {
  bool spawned = false;
  for (Worker& w : workers_) {
    // Alive 2 s after its start: it loaded, whether or not a request came since.
    if (w.channel && w.failures > 0 && now - w.spawned_at > std::chrono::seconds(2)) w.failures = 0;
    if (w.channel || w.respawn_at > now) continue;
    try {
      spawn(w);
      spawned = true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "qserve: %s\n", e.what());
      w.respawn_at = now + std::chrono::seconds(8);
    }
  }
  if (spawned) cv_.notify_all();
}

std::unique_ptr<WorkerPool::Lease> WorkerPool::acquire(std::span<const int32_t> prompt) {
  std::unique_lock lock(mu_);
  // A worker waiting to be respawned has no channel; requests wait for it.
  auto idle = [&] {
    return std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.busy && w.channel; });
  };
  if (!(waiting_.empty() && idle()) && static_cast<int>(waiting_.size()) >= max_queue_)
    throw ApiError(503, "the server is busy: all workers are generating and " + std::to_string(waiting_.size()) +
                            " requests are queued already (--max-queue)");
  const uint64_t ticket = next_ticket_++;
  waiting_.push_back(ticket);
  cv_.wait(lock, [&] { return stopping_ || (waiting_.front() == ticket && idle()); });
  waiting_.pop_front();
  if (stopping_) throw ApiError(503, "the server is shutting down");
  // The idle worker that has the longest prefix of this prompt cached, when that is at
  // least half the prompt (llama.cpp's slot similarity); otherwise the least recently
  // used one, so the caches of other conversations survive.
  size_t best = workers_.size(), best_len = 0, lru = workers_.size();
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].busy || !workers_[i].channel) continue;
    const auto& c = workers_[i].cache;
    const size_t len = std::mismatch(c.begin(), c.end(), prompt.begin(), prompt.end()).first - c.begin();
    if (best == workers_.size() || len > best_len) {
      best = i;
      best_len = len;
    }
    if (lru == workers_.size() || workers_[i].last_used < workers_[lru].last_used) lru = i;
  }
  if (2 * best_len < prompt.size()) best = lru;
  workers_[best].busy = true;
  workers_[best].last_used = ++next_use_;
  lock.unlock();
  cv_.notify_all();  // the next ticket may take another idle worker
  return std::unique_ptr<Lease>(new Lease(*this, best));
}

void WorkerPool::release(size_t slot, bool dead, const std::string& done_json) {
  {
    std::lock_guard lock(mu_);
    Worker& w = workers_[slot];
    if (dead) {
      restart(w);
    } else {
      const json j = json::parse(done_json, nullptr, false);
      w.cache = j.is_object() && j.contains("cache") ? j["cache"].get<std::vector<int32_t>>() : std::vector<int32_t>{};
      w.failures = 0;
      ++counters_.served;
      if (j.is_object() && j.value("finish_reason", "") == "cancelled") ++counters_.cancelled;
    }
    w.busy = false;
  }
  cv_.notify_all();
}

PoolStats WorkerPool::stats() {
  std::lock_guard lock(mu_);
  PoolStats s = counters_;
  s.idle = static_cast<int>(
      std::count_if(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.busy && w.channel; }));
  s.failing = static_cast<int>(std::count_if(workers_.begin(), workers_.end(), [](const Worker& w) { return w.failures >= 2; }));
  s.queued = static_cast<int>(waiting_.size());
  return s;
}

// An idle worker says nothing: readable means it died (EOF). Restart it before a
// request meets it; respawn the ones whose wait is over.
void WorkerPool::watch_idle_workers() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    respawn_due(std::chrono::steady_clock::now());
    std::vector<pollfd> fds;
    std::vector<size_t> slots;
    std::vector<uint64_t> processes;
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i].busy || !workers_[i].channel) continue;
      fds.push_back({workers_[i].channel->fd(), POLLIN, 0});
      slots.push_back(i);
      processes.push_back(workers_[i].process);
    }
    lock.unlock();
    ::poll(fds.data(), fds.size(), 200);
    lock.lock();
    for (size_t k = 0; k < fds.size(); ++k) {
      Worker& w = workers_[slots[k]];
      // The process polled, not one that replaced it meanwhile (its socket may have
      // the same descriptor number).
      if (fds[k].revents != 0 && !w.busy && w.channel && w.process == processes[k]) restart(w);
    }
  }
}

WorkerPool::Lease::~Lease() {
  if (running_ && !dead_) {
    cancel();
    // The worker stops after its current token; one that does not answer is killed.
    while (running_ && !dead_) {
      const Event e = next(30000);
      if (e.kind == Event::Timeout) dead_ = true;
    }
  }
  pool_.release(slot_, dead_, done_json_);
}

bool WorkerPool::Lease::send(const Job& job) {
  Job j = job;
  {
    std::lock_guard lock(pool_.mu_);
    j.id = pool_.next_job_++;
  }
  job_id_ = j.id;
  running_ = true;
  cancel_sent_ = false;
  if (!pool_.workers_[slot_].channel->write_line(job_line(j))) dead_ = true;
  return !dead_;
}

void WorkerPool::Lease::cancel() {
  if (!running_ || dead_ || cancel_sent_) return;
  cancel_sent_ = true;
  if (!pool_.workers_[slot_].channel->write_line(cancel_line(job_id_))) dead_ = true;
}

WorkerPool::Event WorkerPool::Lease::next(int timeout_ms) {
  if (dead_) return {Event::Died, "the worker process died", {}};
  LineChannel& ch = *pool_.workers_[slot_].channel;
  while (true) {
    std::string line;
    const auto r = ch.read_line(line, timeout_ms);
    if (r == LineChannel::Read::Timeout) return {Event::Timeout, {}, {}};
    if (r == LineChannel::Read::Closed) {
      dead_ = true;
      return {Event::Died, "the worker process died", {}};
    }
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("id", uint64_t{0}) != job_id_) continue;
    const std::string type = j.value("type", "");
    if (type == "text") return {Event::Text, j.value("text", ""), j.contains("logprobs") ? j["logprobs"].dump() : std::string()};
    if (type == "done") {
      running_ = false;
      done_json_ = line;
      return {Event::Done, {}, line};
    }
    if (type == "error") {
      running_ = false;
      return {Event::Error, j.value("message", "worker error"), {}};
    }
  }
}

}  // namespace qrun::server
