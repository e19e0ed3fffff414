# Fixture root image base-b: busybox on scratch
# Name: registry.test:5000/fx-base-b
FROM scratch
COPY shared/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo "base-b=yes" >> /etc/fixture-stamps
