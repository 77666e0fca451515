# ActiveRecord probe for drivers_diff.py: establish_connection(url) (the path DATABASE_URL takes,
# without a database.yml merge), then SELECT 1. Prints OK (exit 0) or ERROR Class: message
# (exit 1). Adapted from notes/dialects/clients/client.rb.
require "active_record"
begin
  ActiveRecord::Base.establish_connection(ARGV[0])
  r = ActiveRecord::Base.connection.execute("SELECT 1")
  puts "OK #{r.getvalue(0, 0)}"
  exit 0
rescue Exception => e
  raise if e.is_a?(SystemExit)
  puts "ERROR #{e.class}: #{e.message.strip.lines.first.to_s.strip}"
  exit 1
end
