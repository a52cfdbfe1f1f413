#!/bin/bash
# dspool's own equivalent of the reference's mount script
# (Azure/DataScienceVM Extensions/General/mountazurefiles.sh, which the
# sample's CustomScript extension downloads from GitHub: these machines
# cannot reach it). Same arguments, same steps, same flaws kept on purpose
# (unquoted arguments, the key on the command line, only the admin linked):
# docs/storage.md says what dspool does about each.
#
#   bash mountazurefiles.sh ACCOUNT KEY SHARE MOUNTPOINT USER
#
# In a dspool instance, `mount -t cifs` runs dspool's mount.cifs: it asks
# the instance's agent, which has the server check the key and attach the
# share (a wrong key: "mount error(13): Permission denied").
mkdir -p $4
mount -t cifs //$1.file.core.windows.net/$3 $4 -o vers=3.0,username=$1,password=$2,dir_mode=0777,file_mode=0777
linkpoint=`echo $4 | sed 's/.*\///'`
ln -s $4 /home/$5/$linkpoint
ln -s $4/notebooks/$5 /home/$5/notebooks/remote
