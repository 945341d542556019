# Free TCP ports for the bench scripts' listeners, sourced by them: a random
# start below the ephemeral range, skipping ports that listen now or were
# handed out before. Expects a die function from the caller.
USED_PORTS=" "
PORT_LO=20000
PORT_HI=$(( $(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768) - 1 ))
(( PORT_HI > PORT_LO + 1000 )) || PORT_HI=$((PORT_LO + 10000))
NEXT_PORT=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO - 500)))
ALLOC_PORT=""
alloc_port() {  # sets ALLOC_PORT to a free TCP port below the ephemeral range
    local listening n
    listening=" $(ss -Htln 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | tr '\n' ' ') "
    for ((n = 0; n < 2000; n++)); do
        NEXT_PORT=$((NEXT_PORT + 1))
        (( NEXT_PORT <= PORT_HI )) || NEXT_PORT=$PORT_LO
        if [[ "$listening" != *" $NEXT_PORT "* && "$USED_PORTS" != *" $NEXT_PORT "* ]]; then
            USED_PORTS+="$NEXT_PORT "
            ALLOC_PORT=$NEXT_PORT
            return 0
        fi
    done
    die "no free port found"
}
