# bench.frameworks' Sidekiq side: `sidekiq -r ./bench/sidekiq_bench.rb -c 10` works the no-op jobs, and
# `ruby bench/sidekiq_bench.rb <jobs>` enqueues them with perform_async, one job per call as an application does.
# REDIS_URL names the server (Sidekiq's own default).
require "sidekiq"

class NoopJob
  include Sidekiq::Worker

  def perform; end
end

if $PROGRAM_NAME == __FILE__
  count = Integer(ARGV.fetch(0))
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  count.times { NoopJob.perform_async }
  puts format("enqueued %d in %.3f s", count, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
end
