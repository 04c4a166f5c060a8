# /etc/profile.d/ironfence.sh: lets `ironfence …` in a login shell use the same configuration
# directory as the systemd units (packaging/systemd/*.service use -c with this path).
export IRONFENCE_CONF_DIR=/usr/local/ironfence/conf
# Only if the OS hostname is not this server's cluster.conf section name (then set the same
# value in both units, see ironfence-db.service):
#export IRONFENCE_HOSTNAME=pf1.example.com
