#!/bin/sh
# Starts redis-server with one ACL user for the gateway, limited to its keys (ig:v1:*),
# and the default (password-less, all-powerful) user switched off.
#
#   REDIS_GATEWAY_PASSWORD  required; the gateway's REDIS_URL carries the same password
#   REDIS_GATEWAY_USER      default: invoice-gateway
#   REDIS_ACL_FILE          default: /tmp/users.acl (rewritten at every start)
#
# The password never appears on a command line (ps would show it) nor in a file: the ACL
# file holds its SHA-256. Extra arguments go to redis-server (AOF, memory limits, ...).
set -eu
: "${REDIS_GATEWAY_PASSWORD:?set REDIS_GATEWAY_PASSWORD (the gateway user password)}"
user="${REDIS_GATEWAY_USER:-invoice-gateway}"
acl_file="${REDIS_ACL_FILE:-/tmp/users.acl}"
digest=$(printf '%s' "$REDIS_GATEWAY_PASSWORD" | sha256sum | cut -d ' ' -f 1)
umask 077
# Commands: everything but the dangerous ones (FLUSHALL, KEYS, CONFIG, DEBUG, ...); keys:
# only the gateway's prefix, inside Lua scripts too; no pub/sub channels.
printf 'user default off\nuser %s on #%s ~ig:v1:* resetchannels +@all -@dangerous\n' \
  "$user" "$digest" > "$acl_file"
unset REDIS_GATEWAY_PASSWORD
if command -v docker-entrypoint.sh > /dev/null; then
  # The official image: its entrypoint drops root for the redis user, who must read the file.
  [ "$(id -u)" != 0 ] || chown redis "$acl_file"
  exec docker-entrypoint.sh redis-server "$@" --aclfile "$acl_file"
fi
exec redis-server "$@" --aclfile "$acl_file"
