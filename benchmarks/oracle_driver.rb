# Persistent front end to upstream Kameleon 2.11.0 for benchmarks/fuzz_differential.py.
#
# Starting Ruby and loading Kameleon costs ~0.3 s; this driver pays it once and then
# runs upstream's own `bin/kameleon` script once per request, in the same process.
#
#   ruby -r SHIM -I LIB oracle_driver.rb BIN_KAMELEON SCRATCH_DIR
#
# Protocol (the driver's original stdin/stdout; commands see /dev/null as stdin):
#   request:  one JSON object per line: {"cwd": "/abs/dir", "argv": ["build", "-d", ...]}
#   answer:   "RC OUT_BYTES ERR_BYTES\n", then the raw stdout bytes, then the raw stderr bytes.
#
# Between requests the driver resets the process-wide state that upstream keeps
# (the once-per-name brace warnings, the memoised environment and UI objects, the
# progress flag); the file descriptors 1 and 2 are pointed at fresh scratch files, so
# everything upstream writes (Thor's shell, table_print, Kernel#puts) is captured.
require 'json'

bin_path = ARGV.fetch(0)
scratch = ARGV.fetch(1)

proto_in = STDIN.dup
proto_out = STDOUT.dup
proto_out.binmode
proto_out.sync = true
STDIN.reopen(File::NULL)

# Thor names the program after $0 in its usage messages.
$PROGRAM_NAME = bin_path

out_path = File.join(scratch, 'stdout')
err_path = File.join(scratch, 'stderr')

# Make sure everything bin/kameleon requires is loaded before the first request.
require 'thor/error'
require 'kameleon'

def reset_upstream_state
  Kameleon::Utils.class_variable_set(:@@warned_vars, [])
  Kameleon.env = nil
  Kameleon.ui = nil
  Kameleon.log_on_progress = false
end

while (line = proto_in.gets)
  request = JSON.parse(line)
  status = 0
  STDOUT.reopen(out_path, 'w')
  STDERR.reopen(err_path, 'w')
  STDOUT.sync = true
  STDERR.sync = true
  begin
    reset_upstream_state
    Dir.chdir(request.fetch('cwd'))
    ARGV.replace(request.fetch('argv'))
    load bin_path
  rescue SystemExit => e
    status = e.status
  rescue Exception => e # rubocop:disable Lint/RescueException
    # What an uncaught exception does to a one-shot ruby: a report on stderr, status 1.
    STDERR.puts "#{e.class}: #{e.message}"
    status = 1
  end
  STDOUT.flush
  STDERR.flush
  out = File.binread(out_path)
  err = File.binread(err_path)
  proto_out.write("#{status & 0xff} #{out.bytesize} #{err.bytesize}\n")
  proto_out.write(out)
  proto_out.write(err)
  proto_out.flush
end
